/**
 * Differential updates: the CFD1 delta format (format.ts), its encoder
 * (bsdiff matching on a suffix array, encode.ts) and its resumable,
 * bounded-memory decoder (apply.ts). Pure: no I/O, the source is read and the
 * target written through callbacks.
 */
export { createDelta, encodeDelta, type DeltaOptions } from './encode.js';
export { diffOps, type DeltaOp } from './match.js';
export { DeltaApplier, type DeltaApplierOptions, type DeltaCheckpoint, type SourceReader, type TargetSink } from './apply.js';
export { applyDelta, checkDeltaHeader, checkDeltaSource, type AppliedDelta, type ApplyDeltaOptions } from './image.js';
export {
  DEFAULT_DELTA_LIMITS,
  DELTA_HEADER_BYTES,
  decodeDeltaHeader,
  frameCount,
  maxFrameStream,
  type DeltaHeader,
  type DeltaLimits,
} from './format.js';
export { buildRelease, type Release, type ReleaseBlob, type ReleaseInput } from './release.js';
