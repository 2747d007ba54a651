/**
 * Applying a CFD1 delta (format.ts) the way a device does: the delta arrives
 * in pieces (Block2 payloads) and is pushed in; the source is read through a
 * callback (random access into the installed slot); the target is handed to
 * a sink strictly in order, in pieces of at most `chunkSize` bytes. After
 * every frame the applier reports a checkpoint; a new applier started from a
 * checkpoint, fed the delta from `checkpoint.deltaOffset`, writes exactly the
 * same bytes from `checkpoint.outputOffset` on. Memory is bounded by the
 * frame size: one frame as stored, one inflated, one chunk.
 */
import { inflateRawSync } from 'node:zlib';
import { CoapfwError } from '../errors.js';
import {
  DELTA_HEADER_BYTES,
  FRAME_DEFLATE,
  FRAME_STORED,
  OP_ADD,
  OP_INSERT,
  frameCount,
  maxFrameStream,
  type DeltaHeader,
} from './format.js';
import { ByteReader } from './varint.js';

/** Random access to the source image: `length` bytes at `offset` (inside the source). */
export type SourceReader = (offset: number, length: number) => Uint8Array | Promise<Uint8Array>;
/** Receives target bytes in order: `bytes` go at `offset`. */
export type TargetSink = (offset: number, bytes: Uint8Array) => void | Promise<void>;

/** Where to resume: the next frame, its header's byte offset in the delta, and the target offset it starts at. */
export interface DeltaCheckpoint {
  readonly frame: number;
  readonly deltaOffset: number;
  readonly outputOffset: number;
}

/** Options of `DeltaApplier`. */
export interface DeltaApplierOptions {
  readonly readSource: SourceReader;
  readonly write: TargetSink;
  /** Resume here (from a checkpoint this delta's applier reported); default: the first frame. */
  readonly from?: DeltaCheckpoint;
  /** Called after each frame's bytes have been written: journal it. */
  readonly onCheckpoint?: (cp: DeltaCheckpoint) => void | Promise<void>;
  /** Largest piece handed to `write` and asked of `readSource`; default 512. */
  readonly chunkSize?: number;
}

function malformed(m: string, frame: number): CoapfwError {
  return new CoapfwError('DELTA_MALFORMED', `delta frame ${frame}: ${m}`, { block: frame });
}

/** A push parser that applies one delta; see the module comment. */
export class DeltaApplier {
  private readonly frames: number;
  private readonly chunk: number;
  private frame: number;
  private deltaOffset: number;
  /** Bytes of the current frame received so far (header included). */
  private pending: Uint8Array;
  private used = 0;
  /** Longest inflated command stream so far. */
  private maxInflated = 0;

  constructor(readonly header: DeltaHeader, private readonly opts: DeltaApplierOptions) {
    this.frames = frameCount(header);
    this.chunk = opts.chunkSize ?? 512;
    if (!Number.isSafeInteger(this.chunk) || this.chunk < 1) throw new CoapfwError('INVALID_ARGUMENT', `DeltaApplier: chunkSize must be >= 1, got ${opts.chunkSize}`);
    const from = opts.from ?? { frame: 0, deltaOffset: DELTA_HEADER_BYTES, outputOffset: 0 };
    if (!Number.isSafeInteger(from.frame) || from.frame < 0 || from.frame > this.frames || from.outputOffset !== Math.min(from.frame * header.frameSize, header.targetSize) || !(from.deltaOffset >= DELTA_HEADER_BYTES)) {
      throw new CoapfwError('INVALID_ARGUMENT', `DeltaApplier: checkpoint ${JSON.stringify(from)} does not belong to this delta`);
    }
    this.frame = from.frame;
    this.deltaOffset = from.deltaOffset;
    // A frame is at most 1 codec byte + 5 varint bytes + its stream.
    this.pending = new Uint8Array(6 + maxFrameStream(header.frameSize));
  }

  /**
   * The decoder's working memory in bytes: the frame buffer (sized for the
   * largest frame the header allows), the largest inflated stream so far,
   * and the source and target chunks.
   */
  get workingMemory(): number {
    return this.pending.length + this.maxInflated + 2 * this.chunk;
  }

  /** True once every frame has been applied. */
  get done(): boolean {
    return this.frame === this.frames;
  }

  /** The checkpoint of the next frame to apply. */
  get checkpoint(): DeltaCheckpoint {
    return { frame: this.frame, deltaOffset: this.deltaOffset, outputOffset: Math.min(this.frame * this.header.frameSize, this.header.targetSize) };
  }

  /** Feed the next bytes of the delta (from the checkpoint's deltaOffset on). */
  async push(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      if (this.done) throw new CoapfwError('DELTA_MALFORMED', `delta: ${bytes.length - off} bytes after the last frame`);
      // Until the frame's header is complete, take one byte at a time, so
      // that nothing of the next frame is taken into this one.
      const need = this.frameNeed();
      const take = need === undefined ? 1 : Math.min(bytes.length - off, need - this.used);
      this.pending.set(bytes.subarray(off, off + take), this.used);
      this.used += take;
      off += take;
      if (this.frameNeed() === this.used) await this.applyFrame(this.used);
    }
  }

  /** Declare the end of the delta: throws DELTA_TRUNCATED unless every frame was applied. */
  end(): void {
    if (!this.done) throw new CoapfwError('DELTA_TRUNCATED', `delta: ends in frame ${this.frame} of ${this.frames}`, { block: this.frame });
  }

  /** Total bytes of the current frame once its header is in, or undefined. */
  private frameNeed(): number | undefined {
    if (this.used < 2) return undefined;
    const r = new ByteReader(this.pending.subarray(1, Math.min(this.used, 6)), `delta frame ${this.frame}`);
    let len: number;
    try {
      len = r.uvar();
    } catch (e) {
      if (this.used < 6) return undefined; // the varint may not be complete yet
      throw malformed('bad stored length', this.frame);
    }
    if (len > maxFrameStream(this.header.frameSize)) throw new CoapfwError('DELTA_LIMIT', `delta frame ${this.frame}: ${len} stored bytes exceed ${maxFrameStream(this.header.frameSize)}`, { block: this.frame });
    return 1 + r.pos + len;
  }

  private async applyFrame(total: number): Promise<void> {
    const codec = this.pending[0]!;
    const stream = this.inflate(codec, this.pending.subarray(1 + this.varintBytes(), total));
    if (codec === FRAME_DEFLATE) this.maxInflated = Math.max(this.maxInflated, stream.length);
    await this.run(stream);
    this.deltaOffset += total;
    this.frame++;
    this.used = 0;
    await this.opts.onCheckpoint?.(this.checkpoint);
  }

  private varintBytes(): number {
    let n = 1;
    while ((this.pending[n]! & 0x80) !== 0) n++;
    return n;
  }

  private inflate(codec: number, body: Uint8Array): Uint8Array {
    if (codec === FRAME_STORED) return body;
    if (codec !== FRAME_DEFLATE || this.header.codec !== 1) throw malformed(`codec ${codec} is not allowed here`, this.frame);
    try {
      const out = inflateRawSync(body, { windowBits: this.header.windowLog, maxOutputLength: maxFrameStream(this.header.frameSize) });
      return new Uint8Array(out.buffer, out.byteOffset, out.length);
    } catch (e) {
      throw new CoapfwError('DELTA_MALFORMED', `delta frame ${this.frame}: DEFLATE data is invalid or inflates past ${maxFrameStream(this.header.frameSize)} bytes`, { cause: e, block: this.frame });
    }
  }

  /** Run one frame's commands; every length and source range is checked before it is used. */
  private async run(stream: Uint8Array): Promise<void> {
    const h = this.header;
    const start = this.frame * h.frameSize;
    const end = Math.min(start + h.frameSize, h.targetSize);
    const r = new ByteReader(stream, `delta frame ${this.frame}`);
    let cursor = r.uvar();
    let out = start;
    while (out < end) {
      const op = r.byte();
      const len = r.uvar();
      if (len === 0) throw malformed('a command of length 0', this.frame);
      if (len > end - out) throw new CoapfwError('DELTA_RANGE', `delta frame ${this.frame}: a command of ${len} bytes runs past the frame end (${end - out} left of ${h.targetSize})`, { block: this.frame });
      if (op === OP_INSERT) {
        await this.emit(out, r.bytes(len));
      } else if (op === OP_ADD) {
        cursor += r.svar();
        if (cursor < 0 || cursor + len > h.sourceSize) {
          throw new CoapfwError('DELTA_RANGE', `delta frame ${this.frame}: copy of [${cursor}, ${cursor + len}) is outside the ${h.sourceSize}-byte source`, { block: this.frame });
        }
        await this.add(r, cursor, out, len);
        cursor += len;
      } else {
        throw malformed(`unknown command 0x${op.toString(16)}`, this.frame);
      }
      out += len;
    }
    if (r.remaining !== 0) throw malformed(`${r.remaining} bytes after the frame's last command`, this.frame);
  }

  /** ADD: source bytes plus the (skip, n, diff) pairs, read and written a chunk at a time. */
  private async add(r: ByteReader, from: number, to: number, len: number): Promise<void> {
    let done = 0;
    while (done < len) {
      const skip = r.uvar();
      const n = r.uvar();
      if (skip + n === 0 || skip + n > len - done) throw malformed(`ADD pairs do not cover its ${len} bytes`, this.frame);
      const diff = r.bytes(n);
      for (let k = 0; k < skip + n; k += this.chunk) {
        const m = Math.min(this.chunk, skip + n - k);
        const src = await this.opts.readSource(from + done + k, m);
        if (src.length !== m) throw new CoapfwError('IO_ERROR', `delta: source read of ${m} bytes at ${from + done + k} returned ${src.length}`);
        const piece = new Uint8Array(m);
        for (let i = 0; i < m; i++) {
          const d = k + i - skip;
          piece[i] = d >= 0 ? (src[i]! + diff[d]!) & 0xff : src[i]!;
        }
        await this.opts.write(to + done + k, piece);
      }
      done += skip + n;
    }
  }

  private async emit(offset: number, bytes: Uint8Array): Promise<void> {
    for (let k = 0; k < bytes.length; k += this.chunk) await this.opts.write(offset + k, bytes.slice(k, k + this.chunk));
  }
}
