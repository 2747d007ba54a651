/**
 * Whole-image helpers around `DeltaApplier`: check that the installed image
 * is the delta's source before anything is written, and apply a delta held
 * in memory (publisher checks, tests, benchmarks, a gateway).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { CoapfwError } from '../errors.js';
import { bytesEqual } from '../suit/values.js';
import { DeltaApplier, type SourceReader } from './apply.js';
import { DELTA_HEADER_BYTES, decodeDeltaHeader, type DeltaHeader, type DeltaLimits } from './format.js';

/**
 * Throw DELTA_SOURCE_MISMATCH unless the source is `header.sourceSize` bytes
 * hashing to `header.sourceSha256`. Reads the source in `chunk`-byte pieces.
 */
export async function checkDeltaSource(header: DeltaHeader, sourceSize: number, read: SourceReader, chunk = 4096): Promise<void> {
  if (sourceSize !== header.sourceSize) {
    throw new CoapfwError('DELTA_SOURCE_MISMATCH', `delta: made for a ${header.sourceSize}-byte source, the installed image is ${sourceSize} bytes`);
  }
  const h = sha256.create();
  for (let o = 0; o < sourceSize; o += chunk) h.update(await read(o, Math.min(chunk, sourceSize - o)));
  if (!bytesEqual(h.digest(), header.sourceSha256)) {
    throw new CoapfwError('DELTA_SOURCE_MISMATCH', 'delta: the installed image is not the one this delta applies to (SHA-256 differs)');
  }
}

/**
 * Check a delta's header against what the signed manifest announced, before
 * anything is fetched past the header: DELTA_RANGE when it would produce
 * another size than the manifest's image size, DELTA_SOURCE_MISMATCH when
 * it is made for a source of another size.
 */
export function checkDeltaHeader(header: DeltaHeader, expect: { readonly targetSize?: number; readonly sourceSize?: number }): void {
  if (expect.targetSize !== undefined && header.targetSize !== expect.targetSize) {
    throw new CoapfwError('DELTA_RANGE', `delta: produces ${header.targetSize} bytes, the manifest announces ${expect.targetSize}`);
  }
  if (expect.sourceSize !== undefined && header.sourceSize !== expect.sourceSize) {
    throw new CoapfwError('DELTA_SOURCE_MISMATCH', `delta: made for a ${header.sourceSize}-byte source, the manifest's source is ${expect.sourceSize} bytes`);
  }
}

/** Options of `applyDelta`. */
export interface ApplyDeltaOptions {
  readonly limits?: Partial<DeltaLimits>;
  /** Size of the pieces the delta is pushed in (a CoAP block); default 1024. */
  readonly pushSize?: number;
  /** The target size the manifest announced: a delta for another size is refused (DELTA_RANGE). */
  readonly expectTargetSize?: number;
}

/** What `applyDelta` returns. */
export interface AppliedDelta {
  readonly target: Uint8Array;
  readonly header: DeltaHeader;
  /** The decoder's working memory (bytes), as `DeltaApplier.workingMemory`. */
  readonly workingMemory: number;
}

/**
 * Apply a whole delta to `source`: the source is checked first, the target's
 * SHA-256 last (DIGEST_MISMATCH). Throws the DELTA_* codes of the decoder.
 */
export async function applyDelta(delta: Uint8Array, source: Uint8Array, opts: ApplyDeltaOptions = {}): Promise<AppliedDelta> {
  const header = decodeDeltaHeader(delta, opts.limits);
  if (opts.expectTargetSize !== undefined) checkDeltaHeader(header, { targetSize: opts.expectTargetSize });
  const read: SourceReader = (o, n) => source.subarray(o, o + n);
  await checkDeltaSource(header, source.length, read);
  const target = new Uint8Array(header.targetSize);
  const applier = new DeltaApplier(header, { readSource: read, write: (o, b) => void target.set(b, o) });
  const step = opts.pushSize ?? 1024;
  for (let o = DELTA_HEADER_BYTES; o < delta.length; o += step) await applier.push(delta.subarray(o, Math.min(o + step, delta.length)));
  applier.end();
  if (!bytesEqual(sha256(target), header.targetSha256)) throw new CoapfwError('DIGEST_MISMATCH', 'delta: the rebuilt image does not match the delta\'s target SHA-256');
  return { target, header, workingMemory: applier.workingMemory };
}
