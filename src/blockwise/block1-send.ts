/**
 * Sending a request body block-wise (RFC 7959 §2.5, the client's side of
 * block1.ts): PUT or POST a body of any size in Block1 blocks, every block of
 * one body carrying the same Request-Tag (RFC 9175 §3.2: a new body, even to
 * the same resource, gets a new one) and the first one Size1 (§4: the server
 * refuses a body too large for it before it is sent).
 *
 * - 2.31 Continue: the next block; when the server's Block1 names a smaller
 *   size, the body continues at that size from the next offset (§2.3).
 * - 4.13 Request Entity Too Large: TOO_LARGE, with the server's limit from Size1.
 * - 4.08 Request Entity Incomplete: the server lost the body (it restarted,
 *   or the body expired there): started again from block 0 with a new
 *   Request-Tag, a few times.
 * - 5.03 / 4.29 with Max-Age, timeouts: that block again, with the retry
 *   policy's back-off (the server's Max-Age as the wait when it gave one).
 * - Any other response ends the upload and is returned: the final block's
 *   answer (2.01, 2.04, 4.00 ...), or a server's early final answer to a
 *   non-final block (2.04 "already held", 4.03).
 */
import { blockSize, decodeBlock, encodeBlock, MAX_SZX } from '../codec/block.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { decodeUint, encodeUint, getOption } from '../codec/options.js';
import type { Requester } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError } from '../errors.js';
import { withRetry, type RetryPolicy } from '../messaging/retry.js';
import { isTransient, responseError, retryAfterMs } from './fetch.js';

/** What to send. */
export interface Block1Request {
  /** PUT or POST. */
  readonly code: number;
  /** Options naming the resource (Uri-Path ...) and describing the body (Content-Format); not Block1, Size1 or Request-Tag. */
  readonly options: readonly CoapOption[];
  readonly payload: Uint8Array;
}

/** Progress after each acknowledged block. */
export interface Block1Progress {
  /** Bytes the server has acknowledged. */
  readonly sent: number;
  readonly total: number;
  /** Block size in use (the server may lower it). */
  readonly blockSize: number;
}

/** Options of {@link sendBlock1}. */
export interface Block1SendOptions {
  readonly runtime: Runtime;
  /** Block size exponent to start with (0..6). Default 6 (1024 bytes). */
  readonly szx?: number;
  /** Per-block retry policy for timeouts and "try again later". Default 5 attempts. */
  readonly retry?: RetryPolicy;
  /** Times a body the server lost (4.08) is sent again from the start. Default 2. */
  readonly restarts?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: Block1Progress) => void;
}

/** Request-Tag values: 4 bytes (libcoap's length), fresh per body. */
function newTag(runtime: Runtime): Uint8Array {
  const tag = new Uint8Array(4);
  for (let i = 0; i < tag.length; i++) tag[i] = Math.floor(runtime.random() * 256);
  return tag;
}

/**
 * Send `req`'s body block-wise and resolve with the server's final response.
 * A body that fits one block goes as one request without Block1.
 *
 * @example
 * const res = await sendBlock1(client.request, { code: Code.PUT, options: pathOptions(`/pub/blob/${hex}`), payload: image }, { runtime });
 */
export async function sendBlock1(request: Requester, req: Block1Request, options: Block1SendOptions): Promise<CoapMessage> {
  const szx = options.szx ?? MAX_SZX;
  blockSize(szx); // validates
  const restarts = options.restarts ?? 2;
  const total = req.payload.length;
  if (total <= blockSize(szx)) return finalCheck(await send(request, { code: req.code, options: req.options, payload: req.payload }, 0, options), total);
  for (let attempt = 0; ; attempt++) {
    const res = await sendOnce(request, req, szx, options);
    if (res.code !== Code.REQUEST_ENTITY_INCOMPLETE || attempt >= restarts) return finalCheck(res, total);
  }
}

/** One pass over the body, from block 0; returns the final response (or the 4.08 that ended it). */
async function sendOnce(request: Requester, req: Block1Request, startSzx: number, options: Block1SendOptions): Promise<CoapMessage> {
  const total = req.payload.length;
  const tag = newTag(options.runtime);
  let szx = startSzx;
  let offset = 0;
  for (;;) {
    const size = blockSize(szx);
    const num = offset / size;
    const data = req.payload.subarray(offset, offset + size);
    const more = offset + data.length < total;
    const blockOptions: CoapOption[] = [
      ...req.options,
      { number: OptionNumber.BLOCK1, value: encodeBlock({ num, more, szx }) },
      ...(offset === 0 ? [{ number: OptionNumber.SIZE1, value: encodeUint(total) }] : []),
      { number: OptionNumber.REQUEST_TAG, value: tag },
    ];
    const res = await send(request, { code: req.code, options: blockOptions, payload: data }, num, options);
    if (res.code !== Code.CONTINUE || !more) return res;
    const echoed = getOption(res, OptionNumber.BLOCK1);
    const next = echoed === undefined ? undefined : decodeBlock(echoed);
    // §2.3: a smaller size in the 2.31 applies from the next block on (the offset stays a multiple of it).
    if (next !== undefined && next.szx < szx) szx = next.szx;
    offset += data.length;
    options.onProgress?.({ sent: offset, total, blockSize: blockSize(szx) });
  }
}

/** One block (or the whole body), retried on timeouts and on 5.03/4.29 after Max-Age. */
async function send(request: Requester, spec: { code: number; options: readonly CoapOption[]; payload: Uint8Array }, num: number, options: Block1SendOptions): Promise<CoapMessage> {
  return withRetry(
    async () => {
      const r = await request(spec, { signal: options.signal });
      if (r.code === Code.SERVICE_UNAVAILABLE || r.code === Code.TOO_MANY_REQUESTS) throw responseError(r, num, 'upload');
      return r;
    },
    {
      ...options.retry,
      runtime: options.runtime,
      signal: options.signal,
      isRetryable: isTransient,
      retryAfterMs: (e) => retryAfterMs(e, options.retry ?? {}, () => options.runtime.random()),
    },
  );
}

/** 4.13 becomes TOO_LARGE naming the server's limit; everything else is the caller's to read. */
function finalCheck(res: CoapMessage, total: number): CoapMessage {
  if (res.code === Code.REQUEST_ENTITY_TOO_LARGE) {
    const raw = getOption(res, OptionNumber.SIZE1);
    const limit = raw === undefined ? undefined : decodeUint(raw);
    throw new CoapfwError('TOO_LARGE', `upload: ${total} bytes are more than the server takes${limit === undefined ? '' : ` (at most ${limit})`}`, { responseCode: res.code });
  }
  return res;
}
