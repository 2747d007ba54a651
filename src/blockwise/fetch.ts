/**
 * Block2 fetching (RFC 7959 §2.4) as an async iteration of blocks, from any
 * start block: the basis of resume. The ETag is checked on every block and a
 * change raises ETAG_MISMATCH: two versions are never stitched together.
 * Each block is retried on its own with back-off; there is no deadline for
 * the whole transfer, so a slow link finishes instead of being cut off. A
 * server's "try again later" (5.03, or 4.29 from a rate limit) is one of
 * those retries, after the Max-Age it asked for.
 */
import { equalBytes } from '@noble/curves/utils.js';
import { blockSize, decodeBlock, encodeBlock, MAX_SZX } from '../codec/block.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, codeToString, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption } from '../codec/options.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { RequestOptions, Requester } from '../core/request.js';
import { retryAfterDelay, withRetry, type RetryPolicy } from '../messaging/retry.js';
import type { Runtime } from '../core/runtime.js';

/** One block as received. */
export interface FetchedBlock {
  readonly num: number;
  readonly szx: number;
  /** Byte offset of `data` in the representation. */
  readonly offset: number;
  readonly data: Uint8Array;
  /** True when more blocks follow. */
  readonly more: boolean;
  /** The representation's ETag, when the server sends one. */
  readonly etag: Uint8Array | undefined;
  /** Total size from Size2, when the server said it. */
  readonly total: number | undefined;
}

/** Progress after each block. */
export interface FetchProgress {
  readonly received: number;
  readonly total: number | undefined;
  readonly block: number;
  readonly retries: number;
}

/** Options of {@link fetchBlocks}. */
export interface FetchOptions {
  readonly runtime: Runtime;
  /** Request options naming the resource (Uri-Path, Uri-Query ...), without Block2. */
  readonly options: readonly CoapOption[];
  /** First block to fetch, in units of `szx`. Default 0. */
  readonly startBlock?: number;
  /** Block size exponent asked for (0..6). Default 6 (1024 bytes); the server may pick smaller. */
  readonly szx?: number;
  /** ETag the representation must have (when resuming). */
  readonly etag?: Uint8Array;
  /** Refuse a representation larger than this (TOO_LARGE) as soon as a block goes past it. */
  readonly maxSize?: number;
  /**
   * Per-block retry policy. Default 5 attempts, 1 s base; a 5.03 or 4.29 is
   * retried after its Max-Age (60 s when absent), at most `maxRetryAfterMs`.
   */
  readonly retry?: RetryPolicy;
  readonly signal?: AbortSignal;
  /** Wait for a response this long per attempt (NON, or after an empty ACK). */
  readonly responseTimeoutMs?: number;
  readonly confirmable?: boolean;
  /**
   * Block requests in flight at once (RFC 7252 §4.7: NSTART is per endpoint,
   * so the endpoint must allow as many; 1 for servers not known to). Blocks
   * are still yielded in order. Default 1.
   */
  readonly window?: number;
  readonly onProgress?: (p: FetchProgress) => void;
}

/** RFC 7252 §5.10.5: Max-Age when a response carries none. */
const DEFAULT_MAX_AGE_S = 60;

/**
 * A response that says "try again later": 5.03 Service Unavailable (RFC 7252
 * §5.9.3.4) or 4.29 Too Many Requests (RFC 8516), whose Max-Age is the wait.
 */
export function isRetryLater(e: unknown): e is CoapfwError {
  return isCoapfwError(e, 'RESPONSE_CODE') && (e.responseCode === Code.SERVICE_UNAVAILABLE || e.responseCode === Code.TOO_MANY_REQUESTS);
}

/** Errors worth another attempt: the network, or a server asking to be asked again later. */
export function isTransient(e: unknown): boolean {
  return isCoapfwError(e, 'TIMEOUT') || isCoapfwError(e, 'IO_ERROR') || isCoapfwError(e, 'RESET') || isRetryLater(e);
}

/** The wait before retrying after `e` when it is a "try again later", else undefined (back off instead). */
export function retryAfterMs(e: unknown, policy: RetryPolicy, random: () => number): number | undefined {
  return isRetryLater(e) ? retryAfterDelay(e.maxAge ?? DEFAULT_MAX_AGE_S, policy, random) : undefined;
}

/**
 * Fetch blocks from `startBlock` to the end.
 *
 * @example
 * for await (const b of fetchBlocks(req, { runtime, options: pathOptions('/fw/x') })) sink.write(b.data);
 */
export async function* fetchBlocks(request: Requester, opts: FetchOptions): AsyncGenerator<FetchedBlock, void, void> {
  const szx = opts.szx ?? MAX_SZX;
  blockSize(szx); // validates
  const start = opts.startBlock ?? 0;
  if (!Number.isInteger(start) || start < 0) throw new CoapfwError('INVALID_ARGUMENT', `fetch: startBlock must be an integer >= 0, got ${start}`);
  const window = opts.window ?? 1;
  if (!Number.isInteger(window) || window < 1) throw new CoapfwError('INVALID_ARGUMENT', `fetch: window must be an integer >= 1, got ${window}`);
  // The request and retry options are made once for all the blocks (not per block).
  const st: Transfer = {
    szx,
    start,
    etag: opts.etag,
    received: 0,
    retries: 0,
    total: undefined,
    perRequest: { signal: opts.signal, responseTimeoutMs: opts.responseTimeoutMs },
    retryPolicy: retryPolicy(opts, () => void st.retries++),
  };
  let offset = start * blockSize(szx);
  // The first block fixes the block size and, through Size2, how far a pipeline may run ahead.
  let block = accept(st, await fetchOne(request, opts, st, offset / blockSize(szx)), opts);
  yield block;
  opts.onProgress?.({ received: st.received, total: st.total, block: block.num, retries: st.retries });
  if (window === 1 || st.total === undefined) {
    while (block.more) {
      offset += block.data.length;
      block = accept(st, await fetchOne(request, opts, st, offset / blockSize(st.szx)), opts);
      yield block;
      opts.onProgress?.({ received: st.received, total: st.total, block: block.num, retries: st.retries });
    }
    return;
  }
  yield* pipelined(request, opts, st, block, window);
}

/** What a transfer fixed so far. */
interface Transfer {
  szx: number;
  readonly start: number;
  etag: Uint8Array | undefined;
  received: number;
  retries: number;
  total: number | undefined;
  readonly perRequest: RequestOptions;
  readonly retryPolicy: Parameters<typeof withRetry>[1];
}

/** Blocks after `first`, `window` requests in flight, yielded in order. */
async function* pipelined(request: Requester, opts: FetchOptions, st: Transfer, first: FetchedBlock, window: number): AsyncGenerator<FetchedBlock, void, void> {
  const bs = blockSize(st.szx);
  const last = Math.max(0, Math.ceil(st.total! / bs) - 1);
  const inflight = new Map<number, Promise<FetchedBlock>>();
  let next = first.num + 1;
  const fill = (upTo: number): void => {
    for (; next <= Math.min(last, upTo); next++) {
      const p = fetchOne(request, opts, st, next);
      p.catch(() => undefined); // awaited in order below; an early failure must not be unhandled meanwhile
      inflight.set(next, p);
    }
  };
  let block = first;
  while (block.more) {
    const num = block.num + 1;
    fill(num + window - 1);
    const res = inflight.get(num);
    if (res === undefined) throw new CoapfwError('BLOCK_MISMATCH', `fetch: block ${block.num} says more follow, but Size2 ${st.total} ends there`);
    inflight.delete(num);
    block = accept(st, await res, opts);
    yield block;
    opts.onProgress?.({ received: st.received, total: st.total, block: block.num, retries: st.retries });
  }
}

/** One block request, retried on its own (transient errors, "try again later"), checked against what it asked for. */
async function fetchOne(request: Requester, opts: FetchOptions, st: Transfer, num: number): Promise<FetchedBlock> {
  const options: CoapOption[] = [...opts.options, { number: OptionNumber.BLOCK2, value: encodeBlock({ num, more: false, szx: st.szx }) }];
  if (num === 0 || num === st.start) options.push({ number: OptionNumber.SIZE2, value: new Uint8Array(0) });
  const spec = { code: Code.GET, options, confirmable: opts.confirmable };
  const r = await withRetry(async () => {
    const res = await request(spec, st.perRequest);
    if (res.code === Code.SERVICE_UNAVAILABLE || res.code === Code.TOO_MANY_REQUESTS) throw responseError(res, num);
    return res;
  }, st.retryPolicy);
  return checkResponse(r, num * blockSize(st.szx), num, st.szx, st.etag);
}

/** The retry options of a transfer's block requests: transient errors, and a server's "try again later" after its Max-Age. */
function retryPolicy(opts: FetchOptions, onRetry: () => void): Parameters<typeof withRetry>[1] {
  return {
    ...opts.retry,
    runtime: opts.runtime,
    signal: opts.signal,
    isRetryable: isTransient,
    retryAfterMs: (e) => retryAfterMs(e, opts.retry ?? {}, () => opts.runtime.random()),
    onRetry,
  };
}

/** Check `block` in order against what the transfer fixed, and fix what it tells. */
function accept(st: Transfer, block: FetchedBlock, opts: FetchOptions): FetchedBlock {
  if (block.total !== undefined) {
    // Size2 names the whole representation: it must not change, and the last block must end there.
    if (st.total !== undefined && block.total !== st.total) throw new CoapfwError('BLOCK_MISMATCH', `fetch: Size2 changed from ${st.total} to ${block.total}`);
    st.total = block.total;
  }
  if (!block.more && st.total !== undefined && block.offset + block.data.length !== st.total) {
    throw new CoapfwError('BLOCK_MISMATCH', `fetch: the last block ends at ${block.offset + block.data.length}, the server announced ${st.total} bytes`);
  }
  if (st.received > 0 && st.etag === undefined && block.etag !== undefined) {
    throw new CoapfwError('ETAG_MISMATCH', 'fetch: the server started sending an ETag mid-transfer');
  }
  st.etag = block.etag ?? st.etag;
  if (opts.maxSize !== undefined && block.offset + block.data.length > opts.maxSize) {
    throw new CoapfwError('TOO_LARGE', `fetch: representation exceeds the limit of ${opts.maxSize} bytes at block ${block.num}`);
  }
  st.szx = block.szx;
  st.received += block.data.length;
  return block;
}

/** RESPONSE_CODE for an unexpected response, with its code, its Max-Age (for a 5.03 or 4.29) and the block concerned; `what` labels the message. */
export function responseError(res: CoapMessage, num: number, what = 'fetch'): CoapfwError {
  const diag = res.payload.length > 0 && res.payload.length < 200 ? `: ${new TextDecoder().decode(res.payload)}` : '';
  let maxAge: number | undefined;
  if (res.code === Code.SERVICE_UNAVAILABLE || res.code === Code.TOO_MANY_REQUESTS) {
    const raw = getOption(res, OptionNumber.MAX_AGE);
    try {
      maxAge = raw === undefined ? DEFAULT_MAX_AGE_S : decodeUint(raw);
    } catch {
      maxAge = DEFAULT_MAX_AGE_S; // a malformed Max-Age is treated as absent
    }
  }
  const after = maxAge === undefined ? '' : `, Max-Age ${maxAge} s`;
  return new CoapfwError('RESPONSE_CODE', `${what}: server answered ${codeToString(res.code)}${diag} (block ${num}${after})`, { responseCode: res.code, maxAge, block: num });
}

/** Validate one Block2 response against what was asked. */
function checkResponse(res: CoapMessage, offset: number, num: number, szx: number, etag: Uint8Array | undefined): FetchedBlock {
  if (res.code !== Code.CONTENT) throw responseError(res, num);
  const resEtag = getOption(res, OptionNumber.ETAG);
  if (etag !== undefined && (resEtag === undefined || !equalBytes(etag, resEtag))) {
    // RFC 7959 §2.4: the representation changed; never stitch two versions.
    throw new CoapfwError('ETAG_MISMATCH', `fetch: ETag changed at offset ${offset} (resource was replaced)`);
  }
  const size2 = getOption(res, OptionNumber.SIZE2);
  const total = size2 === undefined ? undefined : decodeUint(size2);
  const rawBlock = getOption(res, OptionNumber.BLOCK2);
  if (rawBlock === undefined) {
    if (offset !== 0) throw new CoapfwError('BLOCK_MISMATCH', `fetch: asked for offset ${offset} but the server sent the whole representation`);
    return { num: 0, szx, offset: 0, data: res.payload, more: false, etag: resEtag, total: total ?? res.payload.length };
  }
  const b = decodeBlock(rawBlock);
  const size = blockSize(b.szx);
  if (b.szx > szx) throw new CoapfwError('BLOCK_MISMATCH', `fetch: server raised the block size to ${size} (asked ${blockSize(szx)})`);
  if (b.num * size !== offset) throw new CoapfwError('BLOCK_MISMATCH', `fetch: asked for offset ${offset}, got block ${b.num} of size ${size}`);
  if (b.more ? res.payload.length !== size : res.payload.length > size) {
    throw new CoapfwError('BLOCK_MISMATCH', `fetch: block ${b.num} carries ${res.payload.length} bytes, block size is ${size}`);
  }
  if (total !== undefined && offset + res.payload.length > total) {
    throw new CoapfwError('BLOCK_MISMATCH', `fetch: block ${b.num} goes past the announced size ${total}`);
  }
  return { num: b.num, szx: b.szx, offset, data: res.payload, more: b.more, etag: resEtag, total };
}

/** Fetch a whole representation into memory (bounded by `maxSize`, default 16 MiB). */
export async function fetchAll(request: Requester, opts: FetchOptions): Promise<{ data: Uint8Array; etag: Uint8Array | undefined }> {
  const chunks: Uint8Array[] = [];
  let etag: Uint8Array | undefined;
  let length = 0;
  for await (const b of fetchBlocks(request, { maxSize: 16 * 1024 * 1024, ...opts })) {
    chunks.push(b.data);
    length += b.data.length;
    etag = b.etag;
  }
  const data = new Uint8Array(length);
  let o = 0;
  for (const c of chunks) {
    data.set(c, o);
    o += c.length;
  }
  return { data, etag };
}
