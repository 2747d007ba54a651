/** Shared fixtures for the update client tests: an in-memory CoAP update server and a device on a MemoryFlash. */
import { sha256 } from '@noble/hashes/sha2.js';
import { bufferSource, type ByteSource } from '../../src/blockwise/source.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import type { Requester } from '../../src/core/request.js';
import { decodeBlock } from '../../src/codec/block.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { decodeMessage } from '../../src/codec/message.js';
import { getOption, uriPath } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import type { TransmissionParams } from '../../src/messaging/params.js';
import { routeRequests } from '../../src/server/router.js';
import { createEnvelope } from '../../src/suit/create.js';
import { privateKeyFromSecret, type SuitPrivateKey } from '../../src/suit/keys.js';
import type { TrustPolicy } from '../../src/suit/trust.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import type { Peer } from '../../src/core/transport.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';

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

/** An update server on a MemNetwork, serving byte sources by path, counting the image blocks it serves. */
export class MemUpdateServer {
  readonly net = new MemNetwork();
  readonly sources = new Map<string, ByteSource>();
  /** Block2 responses served per path. */
  readonly served = new Map<string, number>();
  /** Status reports POSTed to /status/<device>, in order (JSON-decoded). */
  readonly reports: { device: string; report: Record<string, unknown> }[] = [];
  /** Called before each request is answered (e.g. to replace a resource mid-download). */
  beforeServe: (path: string, num: number) => void = () => {};
  private readonly endpoint: CoapEndpoint;
  private nextPort = 20000;

  constructor(readonly maxSzx = 6) {
    this.endpoint = new CoapEndpoint(this.net.endpoint(SERVER.address, SERVER.port), { runtime: systemRuntime });
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
          handle: (req) => {
            const raw = getOption(req.message, OptionNumber.BLOCK2);
            this.beforeServe(key, raw === undefined ? 0 : decodeBlock(raw).num);
            this.served.set(key, (this.served.get(key) ?? 0) + 1);
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

  /** A fresh client (new port, as after a reboot) sharing `runtime`. */
  client(runtime: FakeRuntime, params?: Partial<TransmissionParams>): { request: Requester; close: () => Promise<void> } {
    const ep = new CoapEndpoint(this.net.endpoint('10.0.0.2', this.nextPort++), { runtime, params });
    return { request: (spec, o) => ep.request(SERVER, spec, o), close: () => ep.close() };
  }

  close(): Promise<void> {
    return this.endpoint.close();
  }
}

export const MANIFEST_URI = 'coap://10.0.0.1/manifest.suit';
