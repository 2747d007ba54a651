/**
 * Block1 receiving for large bodies (RFC 7959 §2.5, Request-Tag of RFC 9175
 * §3), streamed: each block goes to a sink as it arrives instead of being
 * assembled in memory, so a firmware image of tens of megabytes costs one
 * block of RAM. The rules are block1.ts's: blocks in order by byte offset,
 * one body per (peer, method, target, Request-Tag), 2.31 Continue with the
 * preferred size echoed, 4.08 for a block that does not continue the body,
 * 4.13 with Size1 past the limit, 5.03 with Max-Age when too many uploads
 * run at once, the final block's Block1 echoed on the final response.
 *
 * An upload that stops arriving is aborted after `idleTimeoutMs` (a timer of
 * the injected runtime), and so is one that is replaced (the peer starts the
 * same body again at block 0, or starts more than its share of uploads): the
 * sink then removes whatever it wrote. Blocks of one body are handled one at
 * a time, in arrival order, so a sink never sees two writes at once.
 *
 * Pure: the sink does the I/O, the runtime gives the timers.
 */
import { equalBytes } from '@noble/curves/utils.js';
import type { BlockValue } from '../codec/block.js';
import { MAX_SZX } from '../codec/block.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { encodeUint } from '../codec/options.js';
import { CoapfwError } from '../errors.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { peerKey } from '../core/transport.js';
import type { BodyHandler } from './block1.js';
import { blockSizeError, bodyKey, continueResponse, echoFinalBlock, readBlock1, tooLargeResponse } from './block1-wire.js';

/** Where one upload's bytes go. */
export interface UploadSink {
  /** Append the next bytes of the body (never called twice at once). */
  write(data: Uint8Array): Promise<void>;
  /** The body is complete: check it, keep it, and say what to answer (2.01, 4.00 ...). */
  finish(): Promise<ResponseSpec>;
  /** The body will never complete: remove what was written. Idempotent. */
  abort(reason: string): void;
}

/**
 * Called for the first block of a new body (or a body sent whole): a sink to
 * stream it into, or the response that ends the upload at once (2.04: the
 * server has these bytes already; 4.03; 5.03 when the staging area is full).
 * `size1` is the whole body's size when the client announced it.
 */
export type UploadOpener = (req: CoapRequest, size1: number | undefined) => UploadSink | ResponseSpec | Promise<UploadSink | ResponseSpec>;

/** Limits of streamed Block1 receiving; every one has a safe default. */
export interface Block1StreamOptions {
  readonly runtime: Runtime;
  /** Largest body, in bytes. Default 64 MiB. */
  readonly maxBodySize?: number;
  /** Uploads in progress at once, over all peers. Default 16. */
  readonly maxUploads?: number;
  /** Uploads one peer may have in progress; a further one replaces its oldest. Default 2. */
  readonly maxPerPeer?: number;
  /** An upload is aborted when no block came for this long. Default 120 s (beyond MAX_TRANSMIT_WAIT, RFC 7252 §4.8.2). */
  readonly idleTimeoutMs?: number;
  /** Largest block size exponent the server wants (0..6). Default 6. */
  readonly preferredSzx?: number;
}

/** Counters, for tests, logs and metrics. */
export interface Block1StreamStats {
  started: number;
  completed: number;
  continued: number;
  /** 4.08 answers. */
  incomplete: number;
  tooLarge: number;
  overloaded: number;
  /** Aborted: idle past the timeout, replaced, or closed. */
  aborted: number;
}

interface Upload {
  readonly peer: string;
  readonly sink: UploadSink;
  received: number;
  lastOffset: number;
  lastBlock: Uint8Array;
  timer: TimerHandle | undefined;
}

function limit(v: number | undefined, fallback: number, what: string, min = 1): number {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < min) throw new CoapfwError('INVALID_ARGUMENT', `block1 stream: ${what} must be an integer >= ${min}, got ${n}`);
  return n;
}

const encoder = new TextEncoder();
const incomplete = (text: string): ResponseSpec => ({ code: Code.REQUEST_ENTITY_INCOMPLETE, payload: encoder.encode(text.slice(0, 120)) });

/** Streams Block1 bodies into sinks; one instance may serve several resources, sharing its limits. */
export class Block1Stream {
  readonly stats: Block1StreamStats = { started: 0, completed: 0, continued: 0, incomplete: 0, tooLarge: 0, overloaded: 0, aborted: 0 };
  private readonly runtime: Runtime;
  private readonly maxBody: number;
  private readonly maxUploads: number;
  private readonly maxPerPeer: number;
  private readonly idleMs: number;
  private readonly preferredSzx: number;
  /** Uploads in progress by body key, oldest first. */
  private readonly uploads = new Map<string, Upload>();
  /** The tail of each body's queue of blocks being handled. */
  private readonly queues = new Map<string, Promise<unknown>>();

  constructor(options: Block1StreamOptions) {
    this.runtime = options.runtime;
    this.maxBody = limit(options.maxBodySize, 64 * 1024 * 1024, 'maxBodySize', 0);
    this.maxUploads = limit(options.maxUploads, 16, 'maxUploads');
    this.maxPerPeer = limit(options.maxPerPeer, 2, 'maxPerPeer');
    this.idleMs = limit(options.idleTimeoutMs, 120_000, 'idleTimeoutMs');
    this.preferredSzx = limit(options.preferredSzx, MAX_SZX, 'preferredSzx', 0);
    if (this.preferredSzx > MAX_SZX) throw new CoapfwError('INVALID_ARGUMENT', `block1 stream: preferredSzx must be 0..6, got ${this.preferredSzx}`);
  }

  /** Uploads in progress. */
  get active(): number {
    return this.uploads.size;
  }

  /** A resource handler streaming every body it receives into the sinks `open` gives. */
  handler(open: UploadOpener): BodyHandler {
    return (req) => this.receive(req, open);
  }

  /** Abort every upload in progress (the server is closing). */
  close(): void {
    for (const key of [...this.uploads.keys()]) this.drop(key, 'server closing');
  }

  private receive(req: CoapRequest, open: UploadOpener): ResponseSpec | Promise<ResponseSpec> {
    const msg = req.message;
    const parsed = readBlock1(msg);
    if ('response' in parsed) return parsed.response;
    const { block, size1 } = parsed;
    if (block === undefined) {
      // A body sent whole, without Block1.
      if (msg.payload.length > this.maxBody) return this.tooLarge();
      return this.queued(bodyKey(req), () => this.whole(req, open));
    }
    const misfit = blockSizeError(block, msg.payload);
    const offset = block.num * (16 << block.szx);
    const key = bodyKey(req);
    if (misfit !== undefined) {
      this.drop(key, 'misfit block');
      return misfit;
    }
    // §4: Size1 announces the whole body; refuse at once rather than after the first megabyte.
    if ((size1 !== undefined && size1 > this.maxBody) || offset + msg.payload.length > this.maxBody) {
      this.drop(key, 'too large');
      return this.tooLarge();
    }
    return this.queued(key, () => this.step(key, req, block, offset, size1, open));
  }

  /** Run `f` after the blocks of the same body that arrived before. */
  private queued(key: string, f: () => Promise<ResponseSpec>): Promise<ResponseSpec> {
    const run = (this.queues.get(key) ?? Promise.resolve()).then(f, f);
    const tail = run.catch(() => undefined); // the caller gets the error; the queue only orders
    this.queues.set(key, tail);
    void tail.then(() => {
      if (this.queues.get(key) === tail) this.queues.delete(key);
    });
    return run;
  }

  private async step(key: string, req: CoapRequest, block: BlockValue, offset: number, size1: number | undefined, open: UploadOpener): Promise<ResponseSpec> {
    const data = req.message.payload;
    const current = this.uploads.get(key);
    // The last block again with the same bytes (a retransmission under a new message ID): answer it again.
    if (current !== undefined && block.more && offset === current.lastOffset && equalBytes(data, current.lastBlock)) return this.continued(key, current, block, offset);
    if (block.num === 0) {
      this.drop(key, 'restarted at block 0');
      return this.begin(key, req, block, size1, open);
    }
    if (current === undefined || offset !== current.received) {
      this.drop(key, 'missing block');
      this.stats.incomplete++;
      return incomplete(`block1: block ${block.num}: ${current === undefined ? 'no earlier blocks of this body' : `expected the block at byte ${current.received}, got byte ${offset}`}`);
    }
    return this.append(key, current, block, offset, data);
  }

  private async begin(key: string, req: CoapRequest, block: BlockValue, size1: number | undefined, open: UploadOpener): Promise<ResponseSpec> {
    const peer = peerKey(req.peer);
    const mine = [...this.uploads].filter(([, u]) => u.peer === peer);
    // A peer over its share replaces its own oldest upload: harmless to others.
    if (mine.length >= this.maxPerPeer) this.drop(mine[0]![0], 'replaced by a newer upload of the peer');
    if (this.uploads.size >= this.maxUploads) return this.overloaded();
    const opened = await open(req, size1);
    if (!isSink(opened)) return opened;
    this.stats.started++;
    const upload: Upload = { peer, sink: opened, received: 0, lastOffset: -1, lastBlock: new Uint8Array(0), timer: undefined };
    this.uploads.set(key, upload);
    return this.append(key, upload, block, 0, req.message.payload);
  }

  private async append(key: string, upload: Upload, block: BlockValue, offset: number, data: Uint8Array): Promise<ResponseSpec> {
    try {
      await upload.sink.write(data);
    } catch (e) {
      this.drop(key, 'write failed');
      throw e;
    }
    upload.received += data.length;
    upload.lastOffset = offset;
    upload.lastBlock = data;
    if (block.more) return this.continued(key, upload, block, offset);
    this.forget(key, upload);
    this.stats.completed++;
    return echoFinalBlock(await this.finish(upload.sink), block);
  }

  private async whole(req: CoapRequest, open: UploadOpener): Promise<ResponseSpec> {
    const opened = await open(req, req.message.payload.length);
    if (!isSink(opened)) return opened;
    this.stats.started++;
    try {
      await opened.write(req.message.payload);
    } catch (e) {
      opened.abort('write failed');
      throw e;
    }
    this.stats.completed++;
    return this.finish(opened);
  }

  private async finish(sink: UploadSink): Promise<ResponseSpec> {
    try {
      return await sink.finish();
    } catch (e) {
      sink.abort('finish failed');
      throw e;
    }
  }

  /** 2.31, and the idle timer restarted. */
  private continued(key: string, upload: Upload, block: BlockValue, offset: number): ResponseSpec {
    this.runtime.clearTimer(upload.timer);
    upload.timer = this.runtime.setTimer(this.idleMs, () => {
      if (this.uploads.get(key) === upload) this.drop(key, `no block for ${this.idleMs} ms`);
    });
    this.stats.continued++;
    return continueResponse(block, offset, this.preferredSzx);
  }

  private tooLarge(): ResponseSpec {
    this.stats.tooLarge++;
    return tooLargeResponse(this.maxBody);
  }

  private overloaded(): ResponseSpec {
    this.stats.overloaded++;
    // The oldest upload frees its place within one idle timeout at the latest.
    const wait = Math.max(1, Math.ceil(this.idleMs / 1000));
    return { code: Code.SERVICE_UNAVAILABLE, options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(wait) }], payload: encoder.encode('block1: too many uploads at once') };
  }

  /** Remove an upload from the table without aborting its sink (it completed). */
  private forget(key: string, upload: Upload): void {
    this.runtime.clearTimer(upload.timer);
    if (this.uploads.get(key) === upload) this.uploads.delete(key);
  }

  private drop(key: string, reason: string): void {
    const upload = this.uploads.get(key);
    if (upload === undefined) return;
    this.forget(key, upload);
    this.stats.aborted++;
    upload.sink.abort(reason);
  }
}

function isSink(v: UploadSink | ResponseSpec): v is UploadSink {
  return typeof (v as UploadSink).write === 'function';
}
