/**
 * The flash abstraction every storage user (resume journal, boot model,
 * image writer) goes through. It models NOR flash, the common case on
 * constrained devices:
 *
 * - `erase` works on whole, aligned erase blocks and sets every byte to 0xFF;
 * - `write` (program) can only turn 1-bits into 0-bits, so writing into a
 *   region that is not erased is an error (`FLASH_NOT_ERASED`): we are strict
 *   and require every target byte to read 0xFF, which also catches the
 *   "programmed the same word twice" bug that real parts forbid;
 * - writes start and end on `writeAlignment` boundaries (the program unit).
 *
 * The interface is async so that file-backed and real drivers fit.
 */
import { CoapfwError } from '../errors.js';

/** Size and granularity of a flash part. */
export interface FlashGeometry {
  /** Total size in bytes, a multiple of `eraseBlockSize`. */
  readonly size: number;
  /** Erase granularity in bytes (a power of two). */
  readonly eraseBlockSize: number;
  /** Program granularity in bytes (a power of two, dividing `eraseBlockSize`). */
  readonly writeAlignment: number;
}

/** A flash chip (or something that behaves like one). */
export interface FlashBackend extends FlashGeometry {
  /** Read `length` bytes at `offset`. Returns a fresh copy. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Program `data` at `offset`. `offset` and `data.length` must be multiples
   * of `writeAlignment`; every target byte must be erased (0xFF).
   */
  write(offset: number, data: Uint8Array): Promise<void>;
  /** Erase `[offset, offset + length)`: both must be multiples of `eraseBlockSize`. */
  erase(offset: number, length: number): Promise<void>;
}

/** The value of an erased byte. */
export const ERASED = 0xff;

function isPowerOfTwo(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Throw `INVALID_ARGUMENT` unless the geometry is consistent. */
export function checkGeometry(g: FlashGeometry, label = 'flash'): void {
  if (!isPowerOfTwo(g.eraseBlockSize)) {
    throw new CoapfwError('INVALID_ARGUMENT', `${label}: eraseBlockSize must be a power of two, got ${g.eraseBlockSize}`);
  }
  if (!isPowerOfTwo(g.writeAlignment) || g.writeAlignment > g.eraseBlockSize) {
    throw new CoapfwError(
      'INVALID_ARGUMENT',
      `${label}: writeAlignment must be a power of two <= eraseBlockSize, got ${g.writeAlignment}`,
    );
  }
  if (!Number.isSafeInteger(g.size) || g.size <= 0 || g.size % g.eraseBlockSize !== 0) {
    throw new CoapfwError(
      'INVALID_ARGUMENT',
      `${label}: size must be a positive multiple of eraseBlockSize (${g.eraseBlockSize}), got ${g.size}`,
    );
  }
}

function checkRange(g: FlashGeometry, op: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > g.size) {
    throw new CoapfwError('FLASH_RANGE', `flash ${op}: [${offset}, +${length}) is outside [0, ${g.size})`);
  }
}

/** Boundary checks shared by all backends for `read`. */
export function checkRead(g: FlashGeometry, offset: number, length: number): void {
  checkRange(g, 'read', offset, length);
}

/** Boundary checks shared by all backends for `write` (range and program alignment). */
export function checkWrite(g: FlashGeometry, offset: number, data: Uint8Array): void {
  if (!(data instanceof Uint8Array)) {
    throw new CoapfwError('INVALID_ARGUMENT', 'flash write: data must be a Uint8Array');
  }
  checkRange(g, 'write', offset, data.length);
  if (offset % g.writeAlignment !== 0 || data.length % g.writeAlignment !== 0) {
    throw new CoapfwError(
      'FLASH_ALIGNMENT',
      `flash write: offset ${offset} and length ${data.length} must be multiples of ${g.writeAlignment}`,
    );
  }
}

/** Boundary checks shared by all backends for `erase` (range and erase-block alignment). */
export function checkErase(g: FlashGeometry, offset: number, length: number): void {
  checkRange(g, 'erase', offset, length);
  if (offset % g.eraseBlockSize !== 0 || length % g.eraseBlockSize !== 0) {
    throw new CoapfwError(
      'FLASH_ALIGNMENT',
      `flash erase: offset ${offset} and length ${length} must be multiples of ${g.eraseBlockSize}`,
    );
  }
}

/** Index of the first byte that is not 0xFF, or -1 if all are erased. */
export function firstNotErased(bytes: Uint8Array): number {
  for (let i = 0; i < bytes.length; i++) if (bytes[i] !== ERASED) return i;
  return -1;
}

/** True when every byte is 0xFF. */
export function isErased(bytes: Uint8Array): boolean {
  return firstNotErased(bytes) === -1;
}

/** Round `n` up to a multiple of `unit`. */
export function alignUp(n: number, unit: number): number {
  return Math.ceil(n / unit) * unit;
}

/** Round `n` down to a multiple of `unit`. */
export function alignDown(n: number, unit: number): number {
  return Math.floor(n / unit) * unit;
}
