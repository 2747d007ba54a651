/**
 * The delta encoder: bsdiff matching (match.ts) cut into CFD1 frames
 * (format.ts), each frame's command stream stored or raw-DEFLATEd, whichever
 * is smaller. No npm package fits: bsdiff-node is a native addon writing the
 * BSDIFF40 format, whose three bzip2 streams need megabytes of RAM to undo
 * and cannot be resumed mid-stream; the VCDIFF packages only decode.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { deflateRawSync } from 'node:zlib';
import { concatBytes } from '@noble/hashes/utils.js';
import { CoapfwError } from '../errors.js';
import {
  DEFAULT_DELTA_LIMITS,
  FRAME_DEFLATE,
  FRAME_STORED,
  MAX_FRAME_SIZE,
  MIN_FRAME_SIZE,
  OP_ADD,
  OP_INSERT,
  encodeDeltaHeader,
  maxFrameStream,
  type DeltaHeader,
} from './format.js';
import { diffOps, type DeltaOp } from './match.js';
import { ByteWriter, VARINT_MAX } from './varint.js';

/** Options of `createDelta`. */
export interface DeltaOptions {
  /** Target bytes per frame: the resume granularity; a multiple of the device's erase block. Default 4096. */
  readonly frameSize?: number;
  /** 'deflate' (default): frames may be raw DEFLATE; 'none': every frame stored (no inflater on the device). */
  readonly compression?: 'deflate' | 'none';
}

/** Zero runs shorter than this inside changed bytes stay in the diff bytes: a (skip, n) pair costs 2 bytes. */
const MIN_SKIP = 3;

/** Append the (skip, n, bytes) pairs of target - source over [to, to + len). */
function writeAddDiff(w: ByteWriter, src: Uint8Array, tgt: Uint8Array, from: number, to: number, len: number): void {
  let i = 0;
  while (i < len) {
    let skip = 0;
    while (i + skip < len && tgt[to + i + skip] === src[from + i + skip]) skip++;
    let n = 0;
    // Extend the changed run over short agreeing gaps.
    for (let j = i + skip; j < len; ) {
      if (tgt[to + j] !== src[from + j]) {
        j++;
        n = j - i - skip;
        continue;
      }
      let gap = 0;
      while (j + gap < len && tgt[to + j + gap] === src[from + j + gap]) gap++;
      if (gap >= MIN_SKIP || j + gap >= len) break;
      j += gap;
    }
    w.uvar(skip);
    w.uvar(n);
    for (let k = 0; k < n; k++) w.byte((tgt[to + i + skip + k]! - src[from + i + skip + k]!) & 0xff);
    i += skip + n;
  }
}

/** The command stream of the frame producing target[start, end). */
function frameStream(ops: readonly DeltaOp[], first: number, src: Uint8Array, tgt: Uint8Array, start: number, end: number): Uint8Array {
  const w = new ByteWriter();
  let cursor = -1;
  for (let k = first; k < ops.length && ops[k]!.to < end; k++) {
    const op = ops[k]!;
    const a = Math.max(start, op.to);
    const b = Math.min(end, op.to + op.len);
    if (b <= a) continue;
    if (op.kind === 'insert') {
      if (cursor < 0) w.uvar((cursor = 0));
      w.byte(OP_INSERT);
      w.uvar(b - a);
      w.bytes(tgt.subarray(a, b));
      continue;
    }
    const from = op.from + (a - op.to);
    if (cursor < 0) w.uvar((cursor = from));
    w.byte(OP_ADD);
    w.uvar(b - a);
    w.svar(from - cursor);
    writeAddDiff(w, src, tgt, from, a, b - a);
    cursor = from + (b - a);
  }
  if (cursor < 0) w.uvar(0); // an empty frame cannot happen (frames have >= 1 byte), kept total
  // The format bounds a frame's stream; a frame of tiny commands could exceed
  // it, and one INSERT of the whole frame never does.
  if (w.length > maxFrameStream(end - start)) {
    const lit = new ByteWriter();
    lit.uvar(0);
    lit.byte(OP_INSERT);
    lit.uvar(end - start);
    lit.bytes(tgt.subarray(start, end));
    return lit.view().slice();
  }
  return w.view().slice();
}

function check(source: Uint8Array, target: Uint8Array, frameSize: number): void {
  const bad = (m: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `createDelta: ${m}`);
  if (!(source instanceof Uint8Array) || !(target instanceof Uint8Array)) throw bad('source and target must be Uint8Arrays');
  if (source.length > VARINT_MAX || target.length > Math.min(VARINT_MAX, DEFAULT_DELTA_LIMITS.maxTargetSize)) throw bad('images above 256 MiB are not supported');
  if (!Number.isSafeInteger(frameSize) || (frameSize & (frameSize - 1)) !== 0 || frameSize < MIN_FRAME_SIZE || frameSize > MAX_FRAME_SIZE) {
    throw bad(`frameSize must be a power of two ${MIN_FRAME_SIZE}..${MAX_FRAME_SIZE}, got ${frameSize}`);
  }
}

/**
 * A CFD1 delta that turns `source` into `target` (format.ts).
 *
 * @example
 * const delta = createDelta(installedImage, newImage, { frameSize: 4096 });
 * // applyDelta(delta, (off, len) => installedImage.subarray(off, off + len)) gives newImage
 */
export function createDelta(source: Uint8Array, target: Uint8Array, opts: DeltaOptions = {}): Uint8Array {
  check(source, target, opts.frameSize ?? 4096);
  return encodeDelta(source, target, diffOps(source, target), opts);
}

/**
 * Frame and encode matching results (`diffOps(source, target)`), so that a
 * publisher can write several frame sizes or codecs from one (costly) match.
 */
export function encodeDelta(source: Uint8Array, target: Uint8Array, ops: readonly DeltaOp[], opts: DeltaOptions = {}): Uint8Array {
  const frameSize = opts.frameSize ?? 4096;
  check(source, target, frameSize);
  const deflate = (opts.compression ?? 'deflate') === 'deflate';
  const header: DeltaHeader = {
    codec: deflate ? 1 : 0,
    windowLog: deflate ? 15 : 0,
    frameSize,
    sourceSize: source.length,
    targetSize: target.length,
    sourceSha256: sha256(source),
    targetSha256: sha256(target),
  };
  const parts: Uint8Array[] = [encodeDeltaHeader(header)];
  let first = 0;
  for (let start = 0; start < target.length; start += frameSize) {
    const end = Math.min(start + frameSize, target.length);
    while (first < ops.length && ops[first]!.to + ops[first]!.len <= start) first++;
    const raw = frameStream(ops, first, source, target, start, end);
    const packed = deflate ? deflateRawSync(raw, { level: 9, windowBits: 15, memLevel: 9 }) : raw;
    const useDeflate = deflate && packed.length < raw.length;
    const body = useDeflate ? new Uint8Array(packed.buffer, packed.byteOffset, packed.length) : raw;
    const fh = new ByteWriter();
    fh.byte(useDeflate ? FRAME_DEFLATE : FRAME_STORED);
    fh.uvar(body.length);
    parts.push(fh.view().slice(), body);
  }
  return concatBytes(...parts);
}
