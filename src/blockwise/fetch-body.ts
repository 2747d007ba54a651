/**
 * Fetching a whole body the fastest way the server allows: Q-Block2
 * (RFC 9177) when the server does it, else Block2 (RFC 7959), pipelined
 * when the caller's endpoint allows more than one request in flight
 * (NSTART, RFC 7252 §4.7). Blocks arrive in any order with Q-Block2: each
 * carries its offset, and `held` says which a resumed fetch already has.
 *
 * Support is learned the way RFC 9177 §4.1 requires: a Confirmable request,
 * here for the lowest block not held (`probeRequest`), through the caller's
 * whole request path (retransmission, Echo, DTLS reconnects, "try again
 * later"). A 4.02 or an answer without Q-Block2 means Block2 from the
 * lowest block not held; an answer with Q-Block2 starts the NON flow.
 */
import { blockSize, MAX_SZX } from '../codec/block.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { getOption } from '../codec/options.js';
import type { Requester } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { CongestionOptions } from '../messaging/congestion.js';
import type { ResponseStream, StreamListener } from '../messaging/response-stream.js';
import { backoffDelay, sleep, withRetry, type RetryPolicy } from '../messaging/retry.js';
import { BlockBitmap, blockCount } from './bitmap.js';
import { fetchBlocks, isTransient, responseError, retryAfterMs, type FetchedBlock, type FetchProgress } from './fetch.js';
import { receiveQBlock2 } from './qblock2-endpoint.js';
import { probeRequest } from './qblock2-options.js';
import type { QBlock2ClientStats } from './qblock2-client.js';
import type { QBlockParams } from './qblock2-params.js';

/** Where a body comes from: `CoapClient` is one; without `openStream` only Block2 is used. */
export interface BodyTarget {
  readonly request: Requester;
  readonly runtime: Runtime;
  /** Uri-Path and Uri-Query options naming the resource. */
  readonly options: readonly CoapOption[];
  /** Requests whose every response goes to `listener` (a Q-Block2 flow). */
  openStream?(listener: StreamListener): ResponseStream;
}

/** Options of {@link fetchBody}. */
export interface FetchBodyOptions {
  /** Block size exponent asked for (0..6). Default 6. */
  readonly szx?: number;
  /** Blocks already held, numbered at `szx` (a resume): not fetched again. */
  readonly held?: BlockBitmap;
  /** ETag the body must have (a resume); another fails with ETAG_MISMATCH. */
  readonly etag?: Uint8Array;
  /** Refuse a larger body (TOO_LARGE). */
  readonly maxSize?: number;
  /** Use Q-Block2 when the server does it. Default true (when the target has `openStream`). */
  readonly qblock2?: boolean;
  /** Block2 requests in flight at once; the endpoint's NSTART must allow as many. Default 1. */
  readonly window?: number;
  /** Q-Block2: ask no further than this many blocks past the lowest missing one. */
  readonly maxAhead?: number;
  readonly congestion?: CongestionOptions;
  readonly qblockParams?: Partial<QBlockParams>;
  /** Per request (Block2) and per stall (Q-Block2) retry policy. */
  readonly retry?: RetryPolicy;
  readonly signal?: AbortSignal;
  readonly responseTimeoutMs?: number;
  /** Each new block, in arrival order; awaited (a returned promise) before the fetch completes. */
  readonly onBlock: (block: FetchedBlock) => void | Promise<void>;
  readonly onProgress?: (p: FetchProgress) => void;
  /** Told once which way the body is fetched. */
  readonly onMode?: (mode: 'qblock2' | 'block2') => void;
}

/** How a body fetch ended. */
export interface BodyResult {
  readonly mode: 'qblock2' | 'block2';
  readonly size: number;
  readonly etag: Uint8Array | undefined;
  readonly szx: number;
  /** New blocks fetched (not held before). */
  readonly blocks: number;
  /** Q-Block2: the client's counters of the last attempt (requests, duplicates, losses, window, RTT). */
  readonly stats?: QBlock2ClientStats;
}

/**
 * Fetch the body of `target` with Q-Block2 or Block2 into `onBlock`.
 *
 * @example
 * const r = await fetchBody(client, { onBlock: (b) => file.write(b.data, 0, b.data.length, b.offset) });
 */
export async function fetchBody(target: BodyTarget, opts: FetchBodyOptions): Promise<BodyResult> {
  const szx = opts.szx ?? MAX_SZX;
  blockSize(szx); // validates
  const window = opts.window ?? 1;
  if (!Number.isInteger(window) || window < 1) throw new CoapfwError('INVALID_ARGUMENT', `fetch: window must be an integer >= 1, got ${window}`);
  // A copy: the caller's record of what it held is not changed under it.
  const st: Progress = { held: opts.held && copyBitmap(opts.held), szx, blocks: 0, received: 0, retries: 0 };
  if (opts.qblock2 !== false && target.openStream !== undefined) {
    const r = await qblock2Attempts(target, opts, st);
    if (r !== undefined) return r;
  }
  return block2(target, opts, st, window);
}

interface Progress {
  held: BlockBitmap | undefined;
  szx: number;
  blocks: number;
  received: number;
  retries: number;
}

/**
 * Q-Block2 until complete; undefined when the server does not do it. A
 * stall (TIMEOUT: nothing arrived for the partial body's lifetime) resumes
 * with a new probe from the lowest missing block, after a back-off; the
 * attempts start afresh after any progress.
 */
async function qblock2Attempts(target: BodyTarget, opts: FetchBodyOptions, st: Progress): Promise<BodyResult | undefined> {
  const policy = opts.retry ?? {};
  for (let failures = 0; ; ) {
    const before = st.blocks;
    const first = await probe(target, opts, st);
    if (first === undefined) return undefined;
    try {
      const outcome = await receiveQBlock2({ request: target.request, openStream: (l) => target.openStream!(l) }, first, {
        runtime: target.runtime,
        options: target.options,
        szx: st.szx,
        held: st.held,
        etag: opts.etag,
        maxSize: opts.maxSize,
        maxAhead: opts.maxAhead,
        congestion: opts.congestion,
        params: opts.qblockParams,
        signal: opts.signal,
        onBlock: (p) => {
          const held = heldAt(st, p.szx, p.size);
          held.set(p.num);
          st.blocks++;
          st.received += p.data.length;
          opts.onProgress?.({ received: st.received, total: p.size, block: p.num, retries: st.retries });
          return opts.onBlock({ num: p.num, szx: p.szx, offset: p.offset, data: p.data, more: p.offset + p.data.length < p.size, etag: p.etag, total: p.size });
        },
      });
      if (outcome.kind === 'fallback') return undefined;
      opts.onMode?.('qblock2');
      return { mode: 'qblock2', size: outcome.size, etag: outcome.etag, szx: outcome.szx, blocks: st.blocks, stats: outcome.stats };
    } catch (e) {
      if (st.blocks > before) failures = 0;
      failures++;
      if (!isCoapfwError(e, 'TIMEOUT') || failures >= (policy.attempts ?? 5) || opts.signal?.aborted) throw e;
      st.retries++;
      await sleep(target.runtime, backoffDelay(failures, policy, () => target.runtime.random()), opts.signal);
    }
  }
}

function copyBitmap(b: BlockBitmap): BlockBitmap {
  const c = new BlockBitmap(b.total);
  for (let n = b.nextReceived(0); n >= 0; n = b.nextReceived(n + 1)) c.set(n);
  return c;
}

/**
 * The record of held blocks at the body's block size `szx` (a server may
 * serve smaller blocks than asked: each held block then stands for several).
 */
function heldAt(st: Progress, szx: number, size: number): BlockBitmap {
  const total = blockCount(size, blockSize(szx));
  if (st.held !== undefined && st.szx === szx && st.held.total === total) return st.held;
  const next = new BlockBitmap(total);
  const shift = st.szx - szx;
  if (st.held !== undefined && shift >= 0) for (let n = 0; n < total; n++) if (st.held.has(n >> shift)) next.set(n);
  st.held = next;
  st.szx = szx;
  return next;
}

/** The CON probe for the lowest block not held (§4.1); undefined: the server does not do Q-Block2 here. */
async function probe(target: BodyTarget, opts: FetchBodyOptions, st: Progress): Promise<CoapMessage | undefined> {
  const held = st.held;
  const num = held === undefined ? 0 : held.complete ? held.total - 1 : held.nextMissing(0);
  const res = await withRetry(
    async () => {
      const r = await target.request(probeRequest(target.options, num, st.szx), { signal: opts.signal, responseTimeoutMs: opts.responseTimeoutMs });
      if (r.code === Code.SERVICE_UNAVAILABLE || r.code === Code.TOO_MANY_REQUESTS) throw responseError(r, num);
      return r;
    },
    {
      ...opts.retry,
      runtime: target.runtime,
      signal: opts.signal,
      isRetryable: isTransient,
      retryAfterMs: (e) => retryAfterMs(e, opts.retry ?? {}, () => target.runtime.random()),
      onRetry: () => void st.retries++,
    },
  );
  if (res.code === Code.BAD_OPTION) return undefined; // §4.1: a server (or resource) without Q-Block2
  if (res.code === Code.CONTENT && getOption(res, OptionNumber.Q_BLOCK2) === undefined) return undefined;
  return res;
}

/** Block2 from the lowest block not held, in order (pipelined with `window` > 1). */
async function block2(target: BodyTarget, opts: FetchBodyOptions, st: Progress, window: number): Promise<BodyResult> {
  const held = st.held;
  const startBlock = held === undefined ? 0 : held.complete ? held.total - 1 : held.nextMissing(0);
  // The held blocks were numbered at the szx asked; Block2 continues at that size (RFC 7959 §2.4 rescales if the server picks smaller).
  let size = 0;
  let etag: Uint8Array | undefined;
  let last = st.szx;
  opts.onMode?.('block2');
  for await (const b of fetchBlocks(target.request, {
    runtime: target.runtime,
    options: target.options,
    startBlock,
    szx: st.szx,
    etag: opts.etag,
    maxSize: opts.maxSize,
    retry: opts.retry,
    signal: opts.signal,
    responseTimeoutMs: opts.responseTimeoutMs,
    window,
    onProgress: opts.onProgress,
  })) {
    await opts.onBlock(b);
    st.blocks++;
    size = b.offset + b.data.length;
    etag = b.etag ?? etag;
    last = b.szx;
  }
  return { mode: 'block2', size, etag, szx: last, blocks: st.blocks };
}
