/**
 * Validation of one Q-Block2 response against the body being received
 * (RFC 9177 §4.4, §4.6): same ETag and Size2 in every payload, the block
 * size fixed by the first one, each payload a whole block but the last.
 */
import { equalBytes } from '@noble/curves/utils.js';
import { blockSize, decodeBlock } from '../codec/block.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, codeToString, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption } from '../codec/options.js';
import { CoapfwError } from '../errors.js';

/** What the first payload fixed. */
export interface BodyShape {
  readonly szx: number;
  readonly size: number;
  readonly total: number;
  readonly etag: Uint8Array | undefined;
}

/** One payload, checked. */
export interface QBlock2Payload {
  readonly num: number;
  readonly szx: number;
  readonly offset: number;
  readonly data: Uint8Array;
  readonly etag: Uint8Array | undefined;
  /** Size2: the whole body in bytes. */
  readonly size: number;
}

/** A 2.05 that is not a Q-Block2 payload, or an error code: what the client should do with it. */
export function classifyFirst(res: CoapMessage): 'qblock2' | 'bad-option' | 'no-qblock2' | 'error' {
  if (res.code === Code.BAD_OPTION) return 'bad-option';
  if (res.code !== Code.CONTENT) return 'error';
  return getOption(res, OptionNumber.Q_BLOCK2) === undefined ? 'no-qblock2' : 'qblock2';
}

/** The error for a response code we cannot go on with. */
export function responseCodeError(res: CoapMessage): CoapfwError {
  const diag = res.payload.length > 0 && res.payload.length < 200 ? `: ${new TextDecoder().decode(res.payload)}` : '';
  return new CoapfwError('RESPONSE_CODE', `q-block2: server answered ${codeToString(res.code)}${diag}`, { responseCode: res.code });
}

const mismatch = (msg: string, block?: number): CoapfwError => new CoapfwError('BLOCK_MISMATCH', `q-block2: ${msg}`, { block });

/** Read a 2.05 carrying Q-Block2; `shape` is undefined for the first payload. */
export function checkPayload(res: CoapMessage, shape: BodyShape | undefined, maxSize: number): QBlock2Payload {
  if (res.code !== Code.CONTENT) throw responseCodeError(res);
  const raw = getOption(res, OptionNumber.Q_BLOCK2);
  if (raw === undefined) throw mismatch('a response of the body carries no Q-Block2 option');
  const b = decodeBlock(raw);
  const size2 = getOption(res, OptionNumber.SIZE2);
  // §4.6: Size2 MUST be in every payload and keep its value.
  if (size2 === undefined) throw mismatch('payload without Size2 (RFC 9177 §4.6)', b.num);
  const size = decodeUint(size2);
  const etag = getOption(res, OptionNumber.ETAG);
  if (shape !== undefined) {
    if (shape.etag !== undefined && (etag === undefined || !equalBytes(etag, shape.etag))) {
      // §4.4: another ETag means another representation; never stitch two together.
      throw new CoapfwError('ETAG_MISMATCH', `q-block2: ETag changed at block ${b.num} (resource was replaced)`, { block: b.num });
    }
    if (size !== shape.size) throw mismatch(`Size2 changed from ${shape.size} to ${size}`, b.num);
    if (b.szx !== shape.szx) throw mismatch(`block size changed from ${blockSize(shape.szx)} to ${blockSize(b.szx)}`, b.num);
  }
  if (size > maxSize) throw new CoapfwError('TOO_LARGE', `q-block2: body of ${size} bytes exceeds the limit of ${maxSize}`);
  const bs = blockSize(b.szx);
  const offset = b.num * bs;
  if (offset >= Math.max(1, size)) throw mismatch(`block ${b.num} starts past the end of ${size} bytes`, b.num);
  const expected = Math.min(bs, size - offset);
  if (res.payload.length !== expected) throw mismatch(`block ${b.num} carries ${res.payload.length} bytes, expected ${expected}`, b.num);
  if (b.more !== offset + bs < size) throw mismatch(`block ${b.num}: M flag contradicts Size2 ${size}`, b.num);
  return { num: b.num, szx: b.szx, offset, data: res.payload, etag, size };
}
