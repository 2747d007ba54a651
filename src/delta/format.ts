/**
 * The coapfw delta format, "CFD1": how to rebuild a target image from a
 * source image (the one installed) with bounded RAM, writing the target
 * strictly in order and reading the source at random, resumable after a
 * power cut at any frame boundary.
 *
 * ```text
 * header (84 bytes, integers little-endian)
 *   0  magic      "CFD1"
 *   4  version    u8 = 1
 *   5  codec      u8: 0 = every frame stored, 1 = frames may be raw DEFLATE (RFC 1951)
 *   6  windowLog  u8: 0 for codec 0, else 9..15 (the DEFLATE window; a device that
 *                  inflates into its frame buffer needs no separate window)
 *   7  reserved   u8 = 0
 *   8  frameSize  u32: target bytes per frame, a power of two 256..1 MiB
 *  12  sourceSize u32
 *  16  targetSize u32
 *  20  sourceSha256 [32]   the image the delta applies to
 *  52  targetSha256 [32]   the image it produces
 * frames: ceil(targetSize / frameSize) of them, frame k producing target bytes
 *         [k * frameSize, min((k + 1) * frameSize, targetSize))
 *   codec u8 (0 stored, 1 deflate; 1 only when the header's codec is 1)
 *   storedLength varint, then storedLength bytes; once inflated, the frame's
 *   command stream, at most 2 * frameSize + 64 bytes:
 *     src0 varint              source cursor at the frame start
 *     commands until the frame's target bytes are complete:
 *       0x00 ADD    len varint >= 1, srcDelta zig-zag varint (cursor += srcDelta first),
 *                   then (skip varint, n varint, n bytes) pairs covering len exactly:
 *                   target = source[cursor + i] + diff[i] (mod 256), diff = 0 on skips;
 *                   cursor += len
 *       0x01 INSERT len varint >= 1, len literal bytes
 * ```
 * Varints are unsigned LEB128 up to 2^32 - 1. ADD is bsdiff's "add" block
 * (Percival 2003): a stretch of code that moved and whose embedded addresses
 * changed differs from the source by a few sparse bytes, which the skip/n
 * pairs (and DEFLATE) make small.
 *
 * Every frame stands alone (its source cursor and its DEFLATE stream start
 * afresh), so a resume needs only the frame number and the byte offset of its
 * header in the delta (`DeltaCheckpoint`); frames end on `frameSize`
 * boundaries of the target, which a device sets to a multiple of its erase
 * block, so "frame k is written" is one journal record per erase block.
 */
import { CoapfwError } from '../errors.js';

/** The 4 magic bytes "CFD1". */
export const DELTA_MAGIC = new Uint8Array([0x43, 0x46, 0x44, 0x31]);
/** Bytes of the header. */
export const DELTA_HEADER_BYTES = 84;
/** Frame codecs. */
export const FRAME_STORED = 0;
export const FRAME_DEFLATE = 1;
/** Command opcodes. */
export const OP_ADD = 0;
export const OP_INSERT = 1;
/** Smallest and largest frame size. */
export const MIN_FRAME_SIZE = 256;
export const MAX_FRAME_SIZE = 1 << 20;

/** The largest command stream a frame of `frameSize` target bytes may carry. */
export function maxFrameStream(frameSize: number): number {
  return 2 * frameSize + 64;
}

/** A decoded delta header. */
export interface DeltaHeader {
  readonly codec: 0 | 1;
  readonly windowLog: number;
  readonly frameSize: number;
  readonly sourceSize: number;
  readonly targetSize: number;
  readonly sourceSha256: Uint8Array;
  readonly targetSha256: Uint8Array;
}

/** Number of frames of a delta. */
export function frameCount(h: Pick<DeltaHeader, 'frameSize' | 'targetSize'>): number {
  return Math.ceil(h.targetSize / h.frameSize);
}

function isPow2(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Encode a header (the encoder validates its numbers first). */
export function encodeDeltaHeader(h: DeltaHeader): Uint8Array {
  const out = new Uint8Array(DELTA_HEADER_BYTES);
  const dv = new DataView(out.buffer);
  out.set(DELTA_MAGIC, 0);
  out[4] = 1;
  out[5] = h.codec;
  out[6] = h.windowLog;
  dv.setUint32(8, h.frameSize, true);
  dv.setUint32(12, h.sourceSize, true);
  dv.setUint32(16, h.targetSize, true);
  out.set(h.sourceSha256, 20);
  out.set(h.targetSha256, 52);
  return out;
}

/** Limits a device applies to a delta before it trusts its header. */
export interface DeltaLimits {
  /** Largest frame size accepted (the RAM the decoder will hold is about 4x this). Default 64 KiB. */
  readonly maxFrameSize: number;
  /** Largest target accepted. Default 256 MiB. */
  readonly maxTargetSize: number;
}

/** Default limits. */
export const DEFAULT_DELTA_LIMITS: DeltaLimits = Object.freeze({ maxFrameSize: 64 * 1024, maxTargetSize: 256 * 1024 * 1024 });

/**
 * Decode and check the 84-byte header at the start of `bytes`. Throws
 * DELTA_TRUNCATED (fewer bytes), DELTA_MALFORMED (magic, version, codec,
 * reserved, frame size), DELTA_LIMIT (beyond `limits`).
 */
export function decodeDeltaHeader(bytes: Uint8Array, limits: Partial<DeltaLimits> = {}): DeltaHeader {
  const lim = { ...DEFAULT_DELTA_LIMITS, ...limits };
  const bad = (m: string): CoapfwError => new CoapfwError('DELTA_MALFORMED', `delta header: ${m}`);
  if (bytes.length < DELTA_HEADER_BYTES) throw new CoapfwError('DELTA_TRUNCATED', `delta header: ${bytes.length} bytes, expected ${DELTA_HEADER_BYTES}`);
  for (let i = 0; i < 4; i++) if (bytes[i] !== DELTA_MAGIC[i]) throw bad('not a coapfw delta (magic is not "CFD1")');
  if (bytes[4] !== 1) throw bad(`version ${bytes[4]}: only 1 is known`);
  const codec = bytes[5]!;
  const windowLog = bytes[6]!;
  if (codec > 1) throw bad(`codec ${codec}: expected 0 (stored) or 1 (deflate)`);
  if (codec === 0 ? windowLog !== 0 : windowLog < 9 || windowLog > 15) throw bad(`window log ${windowLog} does not fit codec ${codec}`);
  if (bytes[7] !== 0) throw bad('reserved byte is not 0');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, DELTA_HEADER_BYTES);
  const frameSize = dv.getUint32(8, true);
  if (!isPow2(frameSize) || frameSize < MIN_FRAME_SIZE || frameSize > MAX_FRAME_SIZE) {
    throw bad(`frame size ${frameSize}: expected a power of two ${MIN_FRAME_SIZE}..${MAX_FRAME_SIZE}`);
  }
  const h: DeltaHeader = {
    codec: codec as 0 | 1,
    windowLog,
    frameSize,
    sourceSize: dv.getUint32(12, true),
    targetSize: dv.getUint32(16, true),
    sourceSha256: bytes.slice(20, 52),
    targetSha256: bytes.slice(52, 84),
  };
  if (frameSize > lim.maxFrameSize) throw new CoapfwError('DELTA_LIMIT', `delta header: frame size ${frameSize} exceeds the limit of ${lim.maxFrameSize}`);
  if (h.targetSize > lim.maxTargetSize) throw new CoapfwError('DELTA_LIMIT', `delta header: target of ${h.targetSize} bytes exceeds the limit of ${lim.maxTargetSize}`);
  return h;
}
