/**
 * Block1 receiving (RFC 7959 §2.5) with Request-Tag (RFC 9175 §3), as a
 * wrapper around a resource's handler: the handler sees whole bodies, never
 * blocks.
 *
 * A body is assembled per (peer, method, Uri-Host/Port/Path/Query,
 * Request-Tag values): RFC 9175 §3.3 matches blocks of one body by the
 * endpoint and the request options, and the Request-Tag keeps two concurrent
 * uploads of one peer to one resource apart (its absence is a value of its
 * own). Blocks must come in order, by byte offset (NUM × size), so a client
 * may move to a smaller block size mid-way (§2.5); a block already received
 * again with the same bytes (a retransmission with a new message ID) is
 * answered again without changing anything.
 *
 * Answers: 2.31 Continue for a non-final block, echoing Block1 with the
 * server's preferred size when the client's is larger (§2.3: it then
 * continues at the smaller size from the next offset); 4.08 for a block that
 * does not continue the body (missing, out of order, or different bytes at
 * an offset already received), dropping what was assembled; 4.13 with Size1
 * = the limit when the body (or the Size1 the client announces) is too large
 * (§4); 5.03 with Max-Age when too many bodies are being assembled. The
 * final response is the handler's, with the final block's Block1 echoed
 * (§2.3). A single-block body (NUM 0, M 0), or a request without Block1, is
 * passed on as it is.
 *
 * Pure: only `runtime.now()` is used, to expire bodies that stop arriving.
 */
import { MAX_SZX, type BlockValue } from '../codec/block.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { encodeUint } from '../codec/options.js';
import { CoapfwError } from '../errors.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime } from '../core/runtime.js';
import { peerKey } from '../core/transport.js';
import { Assembly } from './block1-assembly.js';
import { blockSizeError, bodyKey, continueResponse, diagnostic, echoFinalBlock, readBlock1, tooLargeResponse, wholeRequest } from './block1-wire.js';

/** Limits of Block1 receiving; every one has a safe default. */
export interface Block1Options {
  readonly runtime: Runtime;
  /** Largest body, in bytes. Default 1 MiB. */
  readonly maxBodySize?: number;
  /** Bodies being assembled at once, over all peers. Default 64. */
  readonly maxAssemblies?: number;
  /** Bodies one peer may assemble at once; a further one replaces its oldest. Default 4. */
  readonly maxPerPeer?: number;
  /** Bytes buffered by all unfinished bodies together. Default 16 MiB. */
  readonly maxBufferedBytes?: number;
  /**
   * An unfinished body is dropped when no block came for this long. Default
   * 120 s: longer than MAX_TRANSMIT_WAIT (93 s, RFC 7252 §4.8.2), so a client
   * retransmitting one block for as long as it may still finds its body.
   */
  readonly idleTimeoutMs?: number;
  /** Largest block size exponent the server wants (0..6); larger blocks are accepted and a smaller size asked for. Default 6. */
  readonly preferredSzx?: number;
}

/** Counters, for tests, logs and metrics. */
export interface Block1Stats {
  /** Bodies completed and handed to the handler (multi-block only). */
  completed: number;
  /** Non-final blocks answered 2.31. */
  continued: number;
  /** 4.08 answers. */
  incomplete: number;
  /** 4.13 answers. */
  tooLarge: number;
  /** 5.03 answers (too many bodies at once). */
  overloaded: number;
  /** Unfinished bodies dropped after their idle timeout, or replaced by the peer's newer ones. */
  dropped: number;
}

/** A handler of whole requests (a resource's `handle`). */
export type BodyHandler = (req: CoapRequest) => ResponseSpec | Promise<ResponseSpec>;

/** What the receiver made of one request: answer it now, or hand a whole body on. */
export type Block1Outcome = { readonly kind: 'respond'; readonly response: ResponseSpec } | { readonly kind: 'body'; readonly request: CoapRequest; readonly block?: BlockValue };

const respond = (code: number, text: string, options: ResponseSpec['options'] = []): Block1Outcome => ({ kind: 'respond', response: diagnostic(code, text, options) });

function positive(v: number | undefined, fallback: number, what: string, min = 1): number {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < min) throw new CoapfwError('INVALID_ARGUMENT', `block1: ${what} must be an integer >= ${min}, got ${n}`);
  return n;
}

/** Assembles Block1 bodies; one instance may serve several resources, sharing its limits. */
export class Block1Receiver {
  readonly stats: Block1Stats = { completed: 0, continued: 0, incomplete: 0, tooLarge: 0, overloaded: 0, dropped: 0 };
  private readonly runtime: Runtime;
  private readonly maxBody: number;
  private readonly maxAssemblies: number;
  private readonly maxPerPeer: number;
  private readonly maxBuffered: number;
  private readonly idleMs: number;
  private readonly preferredSzx: number;
  /** Unfinished bodies by key, least recently touched first. */
  private readonly bodies = new Map<string, Assembly>();
  private buffered = 0;

  constructor(options: Block1Options) {
    this.runtime = options.runtime;
    this.maxBody = positive(options.maxBodySize, 1024 * 1024, 'maxBodySize', 0);
    this.maxAssemblies = positive(options.maxAssemblies, 64, 'maxAssemblies');
    this.maxPerPeer = positive(options.maxPerPeer, 4, 'maxPerPeer');
    this.maxBuffered = positive(options.maxBufferedBytes, 16 * 1024 * 1024, 'maxBufferedBytes');
    this.idleMs = positive(options.idleTimeoutMs, 120_000, 'idleTimeoutMs');
    this.preferredSzx = positive(options.preferredSzx, MAX_SZX, 'preferredSzx', 0);
    if (this.preferredSzx > MAX_SZX) throw new CoapfwError('INVALID_ARGUMENT', `block1: preferredSzx must be 0..6, got ${this.preferredSzx}`);
  }

  /** Bodies being assembled now. */
  get assembling(): number {
    return this.bodies.size;
  }

  /** Bytes buffered by unfinished bodies. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** Take one request: an answer to send now, or the whole body to hand to the resource. */
  receive(req: CoapRequest): Block1Outcome {
    this.expire();
    const msg = req.message;
    const parsed = readBlock1(msg);
    if ('response' in parsed) return { kind: 'respond', response: parsed.response };
    const { block, size1 } = parsed;
    if (block === undefined) return msg.payload.length > this.maxBody ? this.tooLarge(undefined) : { kind: 'body', request: req };
    const key = bodyKey(req);
    const size = 16 << block.szx;
    const offset = block.num * size;
    const data = msg.payload;
    const misfit = blockSizeError(block, data);
    if (misfit !== undefined) {
      this.drop(key);
      return { kind: 'respond', response: misfit };
    }
    // §4: Size1 announces the whole body; refuse at once rather than after the first megabyte.
    if ((size1 !== undefined && size1 > this.maxBody) || offset + data.length > this.maxBody) return this.tooLarge(key);
    const current = this.bodies.get(key);
    if (current !== undefined && block.more && current.holds(offset, data)) return this.continued(block, offset, current, key);
    if (block.num === 0) {
      this.drop(key);
      if (!block.more) return { kind: 'body', request: wholeRequest(req, data), block };
      return this.start(key, req, block, size1, data);
    }
    if (current === undefined || offset !== current.received) {
      this.drop(key);
      this.stats.incomplete++;
      const why = current === undefined ? 'no earlier blocks of this body' : `expected the block at byte ${current.received}, got byte ${offset}`;
      return respond(Code.REQUEST_ENTITY_INCOMPLETE, `block1: block ${block.num}: ${why}`);
    }
    const grown = current.append(data, this.maxBody);
    this.buffered += grown;
    if (this.buffered > this.maxBuffered) {
      this.drop(key);
      return this.overloaded('block1: too many bytes buffered');
    }
    if (block.more) return this.continued(block, offset, current, key);
    this.drop(key);
    this.stats.completed++;
    return { kind: 'body', request: wholeRequest(req, current.body()), block };
  }

  private start(key: string, req: CoapRequest, block: BlockValue, size1: number | undefined, data: Uint8Array): Block1Outcome {
    const peer = peerKey(req.peer);
    const mine = [...this.bodies].filter(([, a]) => a.peer === peer);
    // A peer over its share replaces its own oldest body: harmless to others.
    if (mine.length >= this.maxPerPeer) {
      this.drop(mine[0]![0]);
      this.stats.dropped++;
    }
    if (this.bodies.size >= this.maxAssemblies) return this.overloaded('block1: too many uploads at once');
    const initial = Math.min(this.maxBody, Math.max(size1 ?? 2 * data.length, data.length));
    const assembly = new Assembly(peer, this.runtime.now(), initial);
    this.buffered += assembly.capacity;
    this.buffered += assembly.append(data, this.maxBody);
    if (this.buffered > this.maxBuffered) {
      this.buffered -= assembly.capacity;
      return this.overloaded('block1: too many bytes buffered');
    }
    this.bodies.set(key, assembly);
    return this.continued(block, 0, assembly, key);
  }

  /** 2.31 Continue, Block1 echoed at the preferred size when the client's is larger (§2.3, Figure 6). */
  private continued(block: BlockValue, offset: number, assembly: Assembly, key: string): Block1Outcome {
    assembly.touched = this.runtime.now();
    this.bodies.delete(key); // re-insert: the map stays ordered by last use, for expire()
    this.bodies.set(key, assembly);
    this.stats.continued++;
    return { kind: 'respond', response: continueResponse(block, offset, this.preferredSzx) };
  }

  private tooLarge(key: string | undefined): Block1Outcome {
    if (key !== undefined) this.drop(key);
    this.stats.tooLarge++;
    return { kind: 'respond', response: tooLargeResponse(this.maxBody) };
  }

  private overloaded(why: string): Block1Outcome {
    this.stats.overloaded++;
    const oldest = this.bodies.values().next().value;
    const wait = oldest === undefined ? 1 : Math.max(1, Math.ceil((oldest.touched + this.idleMs - this.runtime.now()) / 1000));
    return respond(Code.SERVICE_UNAVAILABLE, why, [{ number: OptionNumber.MAX_AGE, value: encodeUint(wait) }]);
  }

  private drop(key: string): void {
    const a = this.bodies.get(key);
    if (a === undefined) return;
    this.bodies.delete(key);
    this.buffered -= a.capacity;
  }

  /** Drop bodies idle past the timeout; the map is ordered by last use, so stop at the first fresh one. */
  private expire(): void {
    const now = this.runtime.now();
    for (const [key, a] of this.bodies) {
      if (now - a.touched < this.idleMs) break;
      this.drop(key);
      this.stats.dropped++;
    }
  }
}

/**
 * Wrap a resource handler so that it receives whole Block1 bodies.
 *
 * @example
 * const upload: Resource = { methods: new Set([Code.POST]), handle: withBlock1(storeUpload, { runtime, maxBodySize: 64 << 20 }) };
 */
export function withBlock1(handler: BodyHandler, receiver: Block1Receiver | Block1Options): BodyHandler {
  const r = receiver instanceof Block1Receiver ? receiver : new Block1Receiver(receiver);
  return (req) => {
    const outcome = r.receive(req);
    if (outcome.kind === 'respond') return outcome.response;
    const block = outcome.block;
    if (block === undefined) return handler(outcome.request);
    const echo = (res: ResponseSpec): ResponseSpec => echoFinalBlock(res, block);
    const res = handler(outcome.request);
    return res instanceof Promise ? res.then(echo) : echo(res);
  };
}
