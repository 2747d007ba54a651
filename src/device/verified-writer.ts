/**
 * Where a block of an image is handed to the slot writer: with per-block
 * digests, the bytes are cut into authenticated blocks, each checked
 * (block-auth.ts) before a byte of it is written, in whatever order blocks
 * arrive (Block2 in order, Q-Block2 out of order). A transfer block smaller
 * than an authenticated block (a server that negotiated a smaller SZX, or
 * digests over larger blocks) is assembled in RAM first, at most
 * `maxPending` authenticated blocks at once.
 *
 * The first bad block stops the image: DIGEST_MISMATCH with `block` = its
 * number, and nothing of it is written (the erase of its erase block, which
 * `writeImageChunk` does on the first write into it, has not happened
 * either when the bad block starts one).
 */
import { CoapfwError } from '../errors.js';
import type { DigestSource } from './block-auth.js';

/** Writes verified bytes at an offset of the image (erasing ahead: flash/image.ts). */
export type ImageSink = (offset: number, bytes: Uint8Array) => Promise<void>;

/** Options of {@link VerifiedWriter}. */
export interface VerifiedWriterOptions {
  /** Image size: the last authenticated block ends there. */
  readonly size: number;
  /** Where this run starts writing (a resume point: the start of an authenticated block). */
  readonly start: number;
  readonly sink: ImageSink;
  /** The image's digests; undefined: nothing is checked here (only the whole image, later). */
  readonly digests?: DigestSource;
  /**
   * Without digests: assemble in-order pieces into units of this many bytes
   * before writing (a writer of small, unaligned pieces such as the delta
   * applier); 0 or absent: write each piece as it comes.
   */
  readonly assemble?: number;
  /** Authenticated blocks assembled at once. Default 4. */
  readonly maxPending?: number;
}

interface Pending {
  readonly buf: Uint8Array;
  filled: number;
}

/** Verify-before-write in front of a slot; see the module comment. */
export class VerifiedWriter {
  private contiguous: number;
  /** Ranges written beyond the contiguous prefix (out-of-order delivery): start -> end. */
  private readonly ahead = new Map<number, number>();
  private readonly pending = new Map<number, Pending>();
  private readonly unit: number;

  constructor(private readonly o: VerifiedWriterOptions) {
    this.unit = o.digests?.blockSize ?? o.assemble ?? 0;
    if (this.unit > 0 && o.start % this.unit !== 0) {
      throw new CoapfwError('INVALID_ARGUMENT', `VerifiedWriter: start ${o.start} is not on a ${this.unit}-byte block`);
    }
    this.contiguous = o.start;
  }

  /** Bytes from `start` written without a gap: everything before `end` is on flash and verified. */
  get end(): number {
    return this.contiguous;
  }

  /** Hand `data` (at byte `offset` of the image) to the slot, verified when the image has digests. */
  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.unit === 0) {
      await this.o.sink(offset, data);
      return this.written(offset, offset + data.length);
    }
    let at = offset;
    while (at < offset + data.length) {
      const i = Math.floor(at / this.unit);
      const blockStart = i * this.unit;
      const blockLen = Math.min(this.unit, this.o.size - blockStart);
      if (blockLen <= 0) throw new CoapfwError('DIGEST_MISMATCH', `block ${i}: past the end of the ${this.o.size}-byte image`, { block: i });
      const take = Math.min(blockStart + blockLen, offset + data.length) - at;
      const piece = data.subarray(at - offset, at - offset + take);
      if (at === blockStart && take === blockLen) await this.accept(i, piece);
      else await this.assemble(i, blockStart, blockLen, at, piece);
      at += take;
    }
  }

  /** A piece of block `i` smaller than the block: buffer it in order until the block is whole. */
  private async assemble(i: number, blockStart: number, blockLen: number, at: number, piece: Uint8Array): Promise<void> {
    let p = this.pending.get(i);
    if (p === undefined) {
      if (at !== blockStart) throw new CoapfwError('BLOCK_MISMATCH', `block ${i}: data at byte ${at - blockStart} of it, before its start arrived`, { block: i });
      if (this.pending.size >= (this.o.maxPending ?? 4)) {
        throw new CoapfwError('LIMIT_EXCEEDED', `verify: more than ${this.o.maxPending ?? 4} authenticated blocks partly received at once`, { block: i });
      }
      p = { buf: new Uint8Array(blockLen), filled: 0 };
      this.pending.set(i, p);
    }
    if (at !== blockStart + p.filled) throw new CoapfwError('BLOCK_MISMATCH', `block ${i}: data at byte ${at - blockStart} of it, expected byte ${p.filled}`, { block: i });
    p.buf.set(piece, p.filled);
    p.filled += piece.length;
    if (p.filled === blockLen) {
      this.pending.delete(i);
      await this.accept(i, p.buf);
    }
  }

  private async accept(i: number, block: Uint8Array): Promise<void> {
    await this.o.digests?.check(i, block);
    const at = i * this.unit;
    await this.o.sink(at, block);
    this.written(at, at + block.length);
  }

  private written(from: number, to: number): void {
    if (from !== this.contiguous) {
      if (from > this.contiguous) this.ahead.set(from, to);
      return;
    }
    this.contiguous = to;
    for (let next = this.ahead.get(this.contiguous); next !== undefined; next = this.ahead.get(this.contiguous)) {
      this.ahead.delete(this.contiguous);
      this.contiguous = next;
    }
  }
}
