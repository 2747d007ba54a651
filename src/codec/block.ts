/**
 * Block1/Block2 option value math (RFC 7959 §2.2).
 *
 * The value is a uint of 0..3 bytes: `NUM << 4 | M << 3 | SZX`, block size
 * `2^(SZX + 4)` (16..1024). SZX 7 is reserved (BERT, RFC 8323, TCP only).
 */
import { CoapfwError } from '../errors.js';
import { EMPTY } from './bytes.js';

/** A decoded Block option value. */
export interface BlockValue {
  /** Block number, 0..2^20-1. */
  readonly num: number;
  /** M flag: more blocks follow (Block2 responses, Block1 requests). */
  readonly more: boolean;
  /** Size exponent 0..6: block size is 2^(szx+4). */
  readonly szx: number;
}

/** Largest block number that fits a 3-byte Block value (RFC 7959 §2.2). */
export const MAX_BLOCK_NUM = 0xfffff;
/** Largest usable SZX on UDP/DTLS (1024-byte blocks). */
export const MAX_SZX = 6;

/**
 * Decode a Block1/Block2 value. Throws `CoapfwError('BAD_BLOCK_OPTION')` for
 * values longer than 3 bytes and for SZX 7.
 */
export function decodeBlock(v: Uint8Array): BlockValue {
  if (v.length > 3) throw new CoapfwError('BAD_BLOCK_OPTION', `block: value of ${v.length} bytes exceeds 3`);
  let n = 0;
  for (let i = 0; i < v.length; i++) n = (n << 8) | v[i]!;
  const szx = n & 7;
  // RFC 7959 §2.2: SZX 7 is reserved; RFC 8323 §6 gives it to BERT over TCP only.
  if (szx === 7) throw new CoapfwError('BAD_BLOCK_OPTION', 'block: SZX 7 is reserved (BERT)');
  return { num: n >>> 4, more: (n & 8) !== 0, szx };
}

/**
 * Encode a Block value as a minimal uint (NUM 0, M false, SZX 0 is the empty
 * value). Throws `CoapfwError('INVALID_ARGUMENT')` for NUM outside 0..2^20-1
 * or SZX outside 0..6.
 */
export function encodeBlock(b: BlockValue): Uint8Array {
  if (!Number.isInteger(b.num) || b.num < 0 || b.num > MAX_BLOCK_NUM) {
    throw new CoapfwError('INVALID_ARGUMENT', `block: NUM must be an integer 0..${MAX_BLOCK_NUM}, got ${b.num}`);
  }
  if (!Number.isInteger(b.szx) || b.szx < 0 || b.szx > MAX_SZX) {
    throw new CoapfwError('INVALID_ARGUMENT', `block: SZX must be an integer 0..6, got ${b.szx}`);
  }
  const n = (b.num << 4) | (b.more ? 8 : 0) | b.szx;
  if (n === 0) return EMPTY;
  if (n < 0x100) return Uint8Array.of(n);
  if (n < 0x10000) return Uint8Array.of(n >>> 8, n & 0xff);
  return Uint8Array.of(n >>> 16, (n >>> 8) & 0xff, n & 0xff);
}

/** Block size in bytes for SZX 0..6 (2^(szx+4)); other values throw INVALID_ARGUMENT. */
export function blockSize(szx: number): number {
  if (!Number.isInteger(szx) || szx < 0 || szx > MAX_SZX) {
    throw new CoapfwError('INVALID_ARGUMENT', `block: SZX must be an integer 0..6, got ${szx}`);
  }
  return 16 << szx;
}

/** SZX for a block size of 16, 32, ..., 1024; other sizes throw INVALID_ARGUMENT. */
export function szxForSize(size: number): number {
  for (let szx = 0; szx <= MAX_SZX; szx++) if (16 << szx === size) return szx;
  throw new CoapfwError('INVALID_ARGUMENT', `block: size must be a power of two 16..1024, got ${size}`);
}

/**
 * SZX for a block size given as text or a number ("512" -> 5), as a command
 * line or a configuration file writes it: 16, 32, ..., 1024 (RFC 7959 §2.2;
 * SZX 7 is reserved for BERT). Anything else throws INVALID_ARGUMENT labelled
 * with `label`.
 */
export function parseBlockSize(value: string | number, label = 'block size'): number {
  const text = String(value).trim();
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  for (let szx = 0; szx <= MAX_SZX; szx++) if (16 << szx === n) return szx;
  throw new CoapfwError('INVALID_ARGUMENT', `${label}: expected 16, 32, 64, 128, 256, 512 or 1024, got '${text.slice(0, 20)}'`);
}

/** Byte offset of a block: NUM * block size (RFC 7959 §2.2). */
export function blockOffset(b: BlockValue): number {
  return b.num * blockSize(b.szx);
}

/**
 * The block covering byte `offset` at size exponent `szx`, for example when
 * a client asks for a smaller block size mid-transfer (RFC 7959 §2.4): the
 * offset must be a multiple of the block size, else INVALID_ARGUMENT.
 */
export function blockAt(offset: number, szx: number, more = false): BlockValue {
  const size = blockSize(szx);
  if (!Number.isInteger(offset) || offset < 0 || offset % size !== 0) {
    throw new CoapfwError('INVALID_ARGUMENT', `block: offset ${offset} is not a multiple of ${size}`);
  }
  return { num: offset / size, more, szx };
}
