/**
 * An exact record of which blocks of one representation have arrived: one bit
 * per block, sized from Size2 (RFC 9177 §4.6: Size2 is in every Q-Block2
 * payload), so it never forgets a hole. libcoap's client keeps a table of four
 * ranges instead and stalls under sustained loss once holes outnumber them.
 *
 * Memory is ceil(blocks / 32) words: 1 GiB at 1024-byte blocks is 128 KiB.
 * Queries skip whole words, so "next missing" and "missing ranges" cost one
 * step per 32 blocks received plus one per answer.
 */
import { MAX_BLOCK_NUM } from '../codec/block.js';
import { CoapfwError } from '../errors.js';

/** A half-open run of block numbers [start, end). */
export interface BlockRange {
  readonly start: number;
  readonly end: number;
}

/** Most blocks a Block/Q-Block option can number (NUM is 20 bits, RFC 7959 §2.2). */
export const MAX_BLOCKS = MAX_BLOCK_NUM + 1;

const FULL = 0xffffffff;

/** Blocks needed for `size` bytes at `blockSize` bytes each (at least 1: an empty body is one empty block). */
export function blockCount(size: number, blockSize: number): number {
  if (!Number.isSafeInteger(size) || size < 0) throw new CoapfwError('INVALID_ARGUMENT', `bitmap: size must be an integer >= 0, got ${size}`);
  if (!Number.isInteger(blockSize) || blockSize < 16) throw new CoapfwError('INVALID_ARGUMENT', `bitmap: blockSize must be an integer >= 16, got ${blockSize}`);
  return Math.max(1, Math.ceil(size / blockSize));
}

/** Which of `total` blocks have arrived. */
export class BlockBitmap {
  readonly total: number;
  private readonly words: Uint32Array;
  private received = 0;

  /** `total` blocks, 1..2^20 (the NUM range). Throws INVALID_ARGUMENT otherwise. */
  constructor(total: number) {
    if (!Number.isInteger(total) || total < 1 || total > MAX_BLOCKS) {
      throw new CoapfwError('INVALID_ARGUMENT', `bitmap: total must be an integer 1..${MAX_BLOCKS}, got ${total}`);
    }
    this.total = total;
    this.words = new Uint32Array(Math.ceil(total / 32));
  }

  /** Blocks received so far. */
  get count(): number {
    return this.received;
  }

  /** True when every block has arrived. */
  get complete(): boolean {
    return this.received === this.total;
  }

  /** Whether block `num` has arrived; false outside 0..total-1. */
  has(num: number): boolean {
    if (!this.inRange(num)) return false;
    return (this.words[num >>> 5]! & (1 << (num & 31))) !== 0;
  }

  /** Mark block `num` received. Returns false for a duplicate; throws BLOCK_MISMATCH outside 0..total-1. */
  set(num: number): boolean {
    if (!this.inRange(num)) throw new CoapfwError('BLOCK_MISMATCH', `bitmap: block ${num} outside 0..${this.total - 1}`, { block: num });
    const w = num >>> 5;
    const bit = 1 << (num & 31);
    if ((this.words[w]! & bit) !== 0) return false;
    this.words[w] = this.words[w]! | bit;
    this.received++;
    return true;
  }

  /** The first missing block at or after `from`, or -1 when none is missing there. */
  nextMissing(from = 0): number {
    let num = Math.max(0, Math.floor(from));
    while (num < this.total) {
      const w = num >>> 5;
      // Bits below `num` in this word count as present, so they are skipped.
      const word = (this.words[w]! | ((1 << (num & 31)) - 1)) >>> 0;
      if (word !== FULL) {
        const found = (w << 5) + ctz(~word >>> 0);
        return found < this.total ? found : -1;
      }
      num = (w + 1) << 5;
    }
    return -1;
  }

  /** The first received block at or after `from`, or -1. */
  nextReceived(from = 0): number {
    let num = Math.max(0, Math.floor(from));
    while (num < this.total) {
      const w = num >>> 5;
      const word = (this.words[w]! & ~((1 << (num & 31)) - 1)) >>> 0;
      if (word !== 0) {
        const found = (w << 5) + ctz(word);
        return found < this.total ? found : -1;
      }
      num = (w + 1) << 5;
    }
    return -1;
  }

  /** Up to `limit` missing block numbers at or after `from`, ascending. */
  missing(limit: number, from = 0): number[] {
    const out: number[] = [];
    let num = this.nextMissing(from);
    while (num >= 0 && out.length < limit) {
      out.push(num);
      num = this.nextMissing(num + 1);
    }
    return out;
  }

  /** Up to `limit` maximal runs of missing blocks at or after `from`, ascending. */
  missingRanges(limit: number, from = 0): BlockRange[] {
    const out: BlockRange[] = [];
    let start = this.nextMissing(from);
    while (start >= 0 && out.length < limit) {
      const next = this.nextReceived(start + 1);
      const end = next < 0 ? this.total : next;
      out.push({ start, end });
      start = next < 0 ? -1 : this.nextMissing(end);
    }
    return out;
  }

  /** Missing blocks in [start, end). */
  missingIn(start: number, end: number): number {
    let n = 0;
    for (let num = this.nextMissing(start); num >= 0 && num < end; num = this.nextMissing(num + 1)) n++;
    return n;
  }

  private inRange(num: number): boolean {
    return Number.isInteger(num) && num >= 0 && num < this.total;
  }
}

/** Count of trailing zero bits of a non-zero 32-bit value. */
function ctz(x: number): number {
  return 31 - Math.clz32(x & -x);
}
