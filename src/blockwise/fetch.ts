/**
 * Block2 fetching (RFC 7959 §2.4) as an async iteration of blocks, from any
 * start block: the basis of resume. The ETag is checked on every block and a
 * change raises ETAG_MISMATCH: two versions are never stitched together.
 * Each block is retried on its own with back-off; there is no deadline for
 * the whole transfer, so a slow link finishes instead of being cut off.
 */
import { equalBytes } from '@noble/curves/utils.js';
import { blockSize, decodeBlock, encodeBlock, MAX_SZX } from '../codec/block.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, codeToString, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption } from '../codec/options.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { Requester } from '../messaging/echo.js';
import { withRetry, type RetryPolicy } from '../messaging/retry.js';
import type { Runtime } from '../messaging/runtime.js';

export type { Requester } from '../messaging/echo.js';

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
  /** Per-block retry policy. Default 5 attempts, 1 s base. */
  readonly retry?: RetryPolicy;
  readonly signal?: AbortSignal;
  /** Wait for a response this long per attempt (NON, or after an empty ACK). */
  readonly responseTimeoutMs?: number;
  readonly confirmable?: boolean;
  readonly onProgress?: (p: FetchProgress) => void;
}

/** Errors worth another attempt: the network, not the server's answer. */
export function isTransient(e: unknown): boolean {
  return isCoapfwError(e, 'TIMEOUT') || isCoapfwError(e, 'IO_ERROR') || isCoapfwError(e, 'RESET');
}

/**
 * Fetch blocks from `startBlock` to the end.
 *
 * @example
 * for await (const b of fetchBlocks(req, { runtime, options: pathOptions('/fw/x') })) sink.write(b.data);
 */
export async function* fetchBlocks(request: Requester, opts: FetchOptions): AsyncGenerator<FetchedBlock, void, void> {
  let szx = opts.szx ?? MAX_SZX;
  blockSize(szx); // validates
  const start = opts.startBlock ?? 0;
  if (!Number.isInteger(start) || start < 0) throw new CoapfwError('INVALID_ARGUMENT', `fetch: startBlock must be an integer >= 0, got ${start}`);
  let offset = start * blockSize(szx);
  let etag = opts.etag;
  let received = 0;
  let retries = 0;
  let total: number | undefined;
  for (;;) {
    const num = offset / blockSize(szx);
    const options: CoapOption[] = [...opts.options, { number: OptionNumber.BLOCK2, value: encodeBlock({ num, more: false, szx }) }];
    if (offset === 0 || num === start) options.push({ number: OptionNumber.SIZE2, value: new Uint8Array(0) });
    const res = await withRetry(
      () => request({ code: Code.GET, options, confirmable: opts.confirmable }, { signal: opts.signal, responseTimeoutMs: opts.responseTimeoutMs }),
      {
        ...opts.retry,
        runtime: opts.runtime,
        signal: opts.signal,
        isRetryable: isTransient,
        onRetry: () => void retries++,
      },
    );
    const block = checkResponse(res, offset, szx, etag);
    if (block.total !== undefined) {
      // Size2 names the whole representation: it must not change, and the last block must end there.
      if (total !== undefined && block.total !== total) throw new CoapfwError('BLOCK_MISMATCH', `fetch: Size2 changed from ${total} to ${block.total}`);
      total = block.total;
    }
    if (!block.more && total !== undefined && block.offset + block.data.length !== total) {
      throw new CoapfwError('BLOCK_MISMATCH', `fetch: the last block ends at ${block.offset + block.data.length}, the server announced ${total} bytes`);
    }
    if (received > 0 && etag === undefined && block.etag !== undefined) {
      throw new CoapfwError('ETAG_MISMATCH', 'fetch: the server started sending an ETag mid-transfer');
    }
    etag = block.etag ?? etag;
    if (opts.maxSize !== undefined && block.offset + block.data.length > opts.maxSize) {
      throw new CoapfwError('TOO_LARGE', `fetch: representation exceeds the limit of ${opts.maxSize} bytes at block ${block.num}`);
    }
    szx = block.szx;
    received += block.data.length;
    yield block;
    opts.onProgress?.({ received, total, block: block.num, retries });
    if (!block.more) return;
    offset += block.data.length;
  }
}

/** Validate one Block2 response against what was asked. */
function checkResponse(res: CoapMessage, offset: number, szx: number, etag: Uint8Array | undefined): FetchedBlock {
  if (res.code !== Code.CONTENT) {
    const diag = res.payload.length > 0 && res.payload.length < 200 ? `: ${new TextDecoder().decode(res.payload)}` : '';
    throw new CoapfwError('RESPONSE_CODE', `fetch: server answered ${codeToString(res.code)}${diag}`);
  }
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
