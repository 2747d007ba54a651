/**
 * An upstream for the gateway tests: `startFileServer` over a directory (the
 * images at /fw/sha256/<hex>) with, as its own resources, the device
 * protocol of the update service as SERVICE-PROTOCOL.md v1 has it (the
 * service itself is being built elsewhere): manifests at /m/<class-hex>,
 * registration at /d/<id>, reports at /d/<id>/r with the `rseq` replay rule
 * (4.09 for a counter not above the last accepted, nothing written; 4.04 for
 * an unknown device), and /d/<id>/c. Its state survives a restart (the
 * service keeps it in a database), and every image block request is counted.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { decodeBlock } from '../../src/codec/block.js';
import { decodeMessage } from '../../src/codec/message.js';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, uintOption, uriPath } from '../../src/codec/options.js';
import type { Transport } from '../../src/core/transport.js';
import { bufferSource } from '../../src/blockwise/source.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import type { CoapRequest, ResponseSpec } from '../../src/messaging/endpoint.js';
import type { Resolver } from '../../src/server/router.js';
import { decodeBody, encodeBody } from '../../src/gateway/body.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { createEnvelope } from '../../src/suit/create.js';
import { tapTransport } from '../../src/testing/tap.js';
import { privateKeyFromSecret, type SuitPrivateKey } from '../../src/suit/keys.js';
import type { TrustPolicy } from '../../src/suit/trust.js';

export const VENDOR = Uint8Array.from(Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex'));
export const CLASS = Uint8Array.from(Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex'));
export const CLASS_HEX = bytesToHex(CLASS);
export const KEY: SuitPrivateKey = privateKeyFromSecret('ed25519', sha256(new TextEncoder().encode('coapfw gateway test key')));
export const OTHER_KEY: SuitPrivateKey = privateKeyFromSecret('ed25519', sha256(new TextEncoder().encode('somebody else')));
export const TRUST: TrustPolicy = { anchors: [{ name: 'oem', publicKey: KEY.publicKey }] };

/** A signed envelope for `img` (its image at /fw/sha256/<hex>, relative to the manifest's server). */
export function envelope(img: Uint8Array, sequence: number, key: SuitPrivateKey = KEY, classId: Uint8Array = CLASS): Uint8Array {
  return createEnvelope({ sequence, vendorId: VENDOR, classId, uri: `/fw/sha256/${bytesToHex(sha256(img))}`, digest: sha256(img), size: img.length }, [key]);
}

/** What the service keeps (in its database): survives restarts of the server. */
export class ServiceState {
  readonly devices = new Map<string, { rseq: number; registrations: number }>();
  /** Every report accepted, in order. */
  readonly accepted: Array<{ device: string; rseq: number; state: unknown }> = [];
  replays = 0;
  unknown = 0;
  readonly manifests = new Map<string, Uint8Array>();
  /** Max-Age of manifests (0: every request revalidates). */
  manifestMaxAge = 60;
  /** Resources that answer instead of the served directory (a hostile upstream), by path. */
  readonly overrides = new Map<string, (req: CoapRequest) => ResponseSpec | Promise<ResponseSpec>>();
}

/** Block numbers per path, counted at the transport. */
export type BlockLog = Map<string, number[]>;

const push = (log: BlockLog, path: string, nums: number[]): void => void log.set(path, [...(log.get(path) ?? []), ...nums]);

/**
 * Counts what the upstream is asked and serves. `log`: each Block2 (or
 * plain) GET, by the NUM it asks for. A CON retransmitted (same message ID,
 * RFC 7252 §4.2) is the same request: counted once, so that a gateway whose
 * ACK came late on a loaded machine is not taken for one that asked twice.
 * A GET with Q-Block2 (RFC 9177: the probe, the requests for missing
 * blocks) asks for no one block that way: `qlog` gets, per path, the NUM of
 * every 2.05 payload with Q-Block2 the upstream sends back to its token.
 */
function counting(inner: Transport, log: BlockLog, qlog: BlockLog): Transport {
  const seen = new Set<string>();
  const qpaths = new Map<string, string>(); // peer|token of a Q-Block2 request -> its path
  const served = (d: Uint8Array, p: { address: string; port: number }): void => {
    try {
      const m = decodeMessage(d);
      const raw = getOption(m, OptionNumber.Q_BLOCK2);
      const path = qpaths.get(`${p.address}:${p.port}|${bytesToHex(m.token)}`);
      if (raw !== undefined && path !== undefined && m.code === Code.CONTENT) push(qlog, path, [decodeBlock(raw).num]);
    } catch {
      // not ours to judge
    }
  };
  return tapTransport(inner, {
    sent: served,
    received: (data, peer) => {
      try {
        const m = decodeMessage(data);
        const id = `${peer.address}:${peer.port}:${m.messageId}`;
        if (m.code === Code.GET && !seen.has(id)) {
          seen.add(id);
          const path = uriPath(m).join('/');
          if (getOption(m, OptionNumber.Q_BLOCK2) !== undefined) {
            qpaths.set(`${peer.address}:${peer.port}|${bytesToHex(m.token)}`, path);
          } else {
            const raw = getOption(m, OptionNumber.BLOCK2);
            push(log, path, [raw === undefined ? 0 : decodeBlock(raw).num]);
          }
        }
      } catch {
        // not ours to judge
      }
    },
  });
}

export function serviceResources(state: ServiceState): Resolver {
  return (path) => {
    const override = state.overrides.get(path.join('/'));
    if (override !== undefined) return { methods: new Set([Code.GET]), handle: override };
    if (path[0] === 'm' && path.length === 2) {
      const env = state.manifests.get(path[1]!.toLowerCase());
      if (env === undefined) return undefined;
      const maxAge = uintOption(OptionNumber.MAX_AGE, state.manifestMaxAge);
      return {
        methods: new Set([Code.GET]),
        handle: async (req) => {
          const r = await serveBlock2(req.message, bufferSource(env, { contentFormat: ContentFormat.CBOR }));
          return { ...r, options: [...(r.options ?? []), maxAge] };
        },
      };
    }
    if (path[0] !== 'd' || path.length < 2) return undefined;
    const id = path[1]!;
    if (path.length === 2) {
      return {
        methods: new Set([Code.POST]),
        handle: (req) => {
          decodeBody(req.message.payload, undefined);
          const d = state.devices.get(id) ?? { rseq: 0, registrations: 0 };
          d.registrations++;
          state.devices.set(id, d);
          const answer = { id, rseq: d.rseq, cmd: `/d/${id}/c`, manifest: `/m/${bytesToHex(CLASS)}`, poll: 5 };
          return { code: Code.CHANGED, options: [uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.CBOR)], payload: encodeBody(answer, ContentFormat.CBOR) };
        },
      };
    }
    if (path.length === 3 && path[2] === 'r') {
      return {
        methods: new Set([Code.POST]),
        handle: (req) => {
          const body = decodeBody(req.message.payload, undefined);
          const d = state.devices.get(id);
          if (d === undefined) {
            state.unknown++;
            return { code: Code.NOT_FOUND };
          }
          const rseq = Number(body.rseq);
          if (!(rseq > d.rseq)) {
            state.replays++;
            return { code: Code.CONFLICT };
          }
          d.rseq = rseq;
          state.accepted.push({ device: id, rseq, state: body.state });
          return { code: Code.CHANGED };
        },
      };
    }
    if (path.length === 3 && path[2] === 'c') {
      return { methods: new Set([Code.GET]), handle: () => ({ code: Code.CONTENT, options: [uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.CBOR)], payload: encodeBody({ op: 'none' }, ContentFormat.CBOR) }) };
    }
    return undefined;
  };
}

/** A running test upstream. */
export interface TestUpstream {
  readonly server: FileServer;
  readonly port: number;
  readonly uri: string;
  /** Block2 (and plain) GETs per path. */
  readonly blocks: BlockLog;
  /** Q-Block2 payloads served per path (each block's NUM). */
  readonly qblocks: BlockLog;
  readonly state: ServiceState;
  close(): Promise<void>;
}

/** Start the upstream on `port` (0: any) serving `dir`, with `state` (a fresh one by default). */
export async function startUpstream(dir: string, port = 0, state = new ServiceState(), blocks: BlockLog = new Map(), qblocks: BlockLog = new Map()): Promise<TestUpstream> {
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port });
  const server = await startFileServer({ dir, transport: counting(udp, blocks, qblocks), refreshMs: 0, resources: serviceResources(state) });
  const actual = server.address().port;
  return { server, port: actual, uri: `coap://127.0.0.1:${actual}`, blocks, qblocks, state, close: () => server.close() };
}
