/** Shared fixtures for the update client tests: an in-memory CoAP update server and a device on a MemoryFlash. */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { endpointSender } from '../../src/blockwise/qblock2-endpoint.js';
import { hasQBlock2, QBlock2Server } from '../../src/blockwise/qblock2-server.js';
import { bufferSource, type ByteSource } from '../../src/blockwise/source.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import type { Requester } from '../../src/core/request.js';
import { decodeBlock } from '../../src/codec/block.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { decodeMessage } from '../../src/codec/message.js';
import { getOption, uriPath } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import type { TransmissionParams } from '../../src/messaging/params.js';
import type { ResponseStream, StreamListener } from '../../src/messaging/response-stream.js';
import { routeRequests } from '../../src/server/router.js';
import { createEnvelope } from '../../src/suit/create.js';
import { privateKeyFromSecret, type SuitPrivateKey } from '../../src/suit/keys.js';
import type { TrustPolicy } from '../../src/suit/trust.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import type { Peer } from '../../src/core/transport.js';
import { mulberry32 } from '../../src/flash/prng.js';
import type { Runtime } from '../../src/core/runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';
import { provisionDevice } from '../../src/device/device.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function image(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return new Uint8Array(n).map(() => Math.floor(r() * 256));
}

export const VENDOR = Uint8Array.from(Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex'));
export const CLASS = Uint8Array.from(Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex'));
export const KEY: SuitPrivateKey = privateKeyFromSecret('ed25519', sha256(new TextEncoder().encode('coapfw update test key')));
export const TRUST: TrustPolicy = { anchors: [{ name: 'test', publicKey: KEY.publicKey }] };

export const SERVER: Peer = { address: '10.0.0.1', port: 5683 };

/** Whether a datagram a server received asks for an image (Uri-Path fw/...); false for a malformed one (the endpoint deals with it). */
export function isImageRequest(data: Uint8Array): boolean {
  try {
    return uriPath(decodeMessage(data))[0] === 'fw';
  } catch {
    return false;
  }
}

/** A signed single-image envelope for `img` at `uri`. */
export function envelopeFor(img: Uint8Array, sequence: number, uri = `coap://10.0.0.1/fw/sha256/${hex(sha256(img))}`, size = img.length): Uint8Array {
  return createEnvelope({ sequence, vendorId: VENDOR, classId: CLASS, uri, digest: sha256(img), size }, [KEY]);
}

/**
 * An update server on a MemNetwork, serving byte sources by path, counting
 * the image blocks it serves; with `qblock2`, Q-Block2 requests (RFC 9177)
 * are answered by a {@link QBlock2Server} on the system clock.
 */
export class MemUpdateServer {
  readonly net = new MemNetwork();
  readonly sources = new Map<string, ByteSource>();
  /** Block2 responses served per path (Q-Block2 blocks: {@link qblocksSent}). */
  readonly served = new Map<string, number>();
  /** Status reports POSTed to /status/<device>, in order (JSON-decoded). */
  readonly reports: { device: string; report: Record<string, unknown> }[] = [];
  /** Requests for a body, per path (Block2 and Q-Block2 alike). */
  readonly requests = new Map<string, number>();
  /** Called before each request is answered (e.g. to replace a resource mid-download); `num`: its first block. */
  beforeServe: (path: string, num: number) => void = () => {};
  private readonly endpoint: CoapEndpoint;
  private readonly qblock2: QBlock2Server | undefined;
  private nextPort = 20000;

  constructor(
    readonly maxSzx = 6,
    qblock2 = false,
  ) {
    this.endpoint = new CoapEndpoint(this.net.endpoint(SERVER.address, SERVER.port), { runtime: systemRuntime });
    this.qblock2 = qblock2 ? new QBlock2Server({ runtime: systemRuntime, maxSzx, sender: endpointSender(this.endpoint) }) : undefined;
    this.endpoint.handle(
      routeRequests((path) => {
        if (path[0] === 'status' && path.length === 2) {
          return {
            methods: new Set([Code.POST]),
            handle: (req) => {
              this.reports.push({ device: path[1]!, report: JSON.parse(new TextDecoder().decode(req.message.payload)) as Record<string, unknown> });
              return { code: Code.CHANGED };
            },
          };
        }
        const key = path.join('/');
        if (!this.sources.has(key)) return undefined;
        return {
          methods: new Set([Code.GET]),
          // Without Q-Block2 a request for it gets 4.02 (router.ts), as from a server that does not do it.
          ...(this.qblock2 ? { options: new Set([OptionNumber.Q_BLOCK2]) } : {}),
          handle: (req) => {
            const q = this.qblock2 !== undefined && hasQBlock2(req.message);
            const raw = getOption(req.message, q ? OptionNumber.Q_BLOCK2 : OptionNumber.BLOCK2);
            this.beforeServe(key, raw === undefined ? 0 : decodeBlock(raw).num);
            this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
            if (!q) this.served.set(key, (this.served.get(key) ?? 0) + 1);
            if (q) return this.qblock2!.handle(req.message, req.peer, this.sources.get(key)!, req.size);
            return serveBlock2(req.message, this.sources.get(key)!, { maxSzx: this.maxSzx });
          },
        };
      }),
    );
  }

  /** Serve `bytes` at `path` (ETag: a SHA-256 prefix unless given). */
  put(path: string, bytes: Uint8Array, etag?: Uint8Array): void {
    this.sources.set(path.replace(/^\//, ''), bufferSource(bytes, etag ? { etag } : {}));
  }

  /** Publish `img` at /fw/sha256/<hex> and its envelope at /manifest.suit. */
  publish(img: Uint8Array, sequence: number): string {
    const path = `fw/sha256/${hex(sha256(img))}`;
    this.put(path, img);
    this.put('manifest.suit', envelopeFor(img, sequence));
    return path;
  }

  servedOf(path: string): number {
    return this.served.get(path.replace(/^\//, '')) ?? 0;
  }

  requestsOf(path: string): number {
    return this.requests.get(path.replace(/^\//, '')) ?? 0;
  }

  /** Blocks the Q-Block2 server sent (every path: only images are fetched with Q-Block2). */
  get qblocksSent(): number {
    return this.qblock2?.stats.blocksSent ?? 0;
  }

  /**
   * A fresh client (new port, as after a reboot) sharing `runtime`, with the
   * response stream a Q-Block2 fetch needs (whose pacing wants a clock that moves: systemRuntime).
   */
  client(
    runtime: Runtime,
    params?: Partial<TransmissionParams>,
  ): { request: Requester; openStream: (l: StreamListener) => ResponseStream; close: () => Promise<void> } {
    const ep = new CoapEndpoint(this.net.endpoint('10.0.0.2', this.nextPort++), { runtime, params });
    return { request: (spec, o) => ep.request(SERVER, spec, o), openStream: (l) => ep.openStream(SERVER, l), close: () => ep.close() };
  }

  close(): Promise<void> {
    this.qblock2?.close();
    return this.endpoint.close();
  }
}

export const MANIFEST_URI = 'coap://10.0.0.1/manifest.suit';

/**
 * A fresh directory for a device CLI test: `srv/app.bin` (`img`), `srv/app.suit` (its envelope of
 * `sequence`, signed by KEY, naming the image by content) and `pub.hex` (the key to trust).
 */
export async function releaseDir(prefix: string, img: Uint8Array, sequence: number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await mkdir(join(dir, 'srv'));
  await writeFile(join(dir, 'srv', 'app.bin'), img);
  await writeFile(join(dir, 'srv', 'app.suit'), envelopeFor(img, sequence, `/fw/sha256/${hex(sha256(img))}`));
  await writeFile(join(dir, 'pub.hex'), hex(KEY.publicKey.bytes));
  return dir;
}

/** An 80 KiB MemoryFlash in 4 KiB erase blocks, two 28 KiB slots, provisioned with `installed` as sequence 1. */
export async function provisionedDevice(installed: Uint8Array): Promise<{ flash: MemoryFlash; layout: FlashLayout }> {
  const flash = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 28 * 1024 });
  await provisionDevice(flash, layout, installed, 1);
  return { flash, layout };
}
