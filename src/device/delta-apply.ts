/**
 * The download state for an image built from a delta (A/B devices): the
 * delta is fetched block-wise (Q-Block2 when the update has a response
 * stream and the server does it, else Block2) and streamed in order into the applier (src/delta/),
 * which reads the installed image in the primary slot and writes the new
 * one into the secondary, frame by frame. Nothing of the delta is stored.
 *
 * Checks, in the order they happen:
 * 1. the delta's header against the signed manifest (target size, digest
 *    and frame size) and the installed image (its recorded size and digest),
 *    then the installed image's bytes hashed against the header's source
 *    digest: DELTA_SOURCE_MISMATCH before a byte is written;
 * 2. each delta block against the delta's own block digests before it is
 *    applied;
 * 3. each block the applier produces against the new image's block digests
 *    before it is written (verified-writer.ts);
 * 4. on a fresh apply, the whole delta and the whole output against their
 *    signed digests; verify-image hashes the slot again.
 * When any check fails, the delta was not the way: the manifest's full-image
 * alternative is fetched instead (try-each, draft-ietf-suit-manifest-37
 * §8.4.10.2), from block 0.
 *
 * Resume: after every frame (a multiple of the erase block, one journal
 * record per frame) an `applying` record names the next frame and where it
 * starts in the delta; after a cut the header is fetched again (one block),
 * the source checked again, and the delta fetched from that frame on.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes } from '@noble/curves/utils.js';
import { fetchBlocks } from '../blockwise/fetch.js';
import { blockSize } from '../codec/block.js';
import { DeltaApplier, type DeltaCheckpoint } from '../delta/apply.js';
import { DELTA_HEADER_BYTES, decodeDeltaHeader, frameCount, type DeltaHeader } from '../delta/format.js';
import { checkDeltaHeader, checkDeltaSource } from '../delta/image.js';
import { CoapfwError } from '../errors.js';
import { alignDown } from '../flash/backend.js';
import { writeImageChunk } from '../flash/image.js';
import { updateSlot } from '../flash/layout.js';
import type { SlotImage } from './boot-state.js';
import { readBootState } from './boot.js';
import { rangeFetcher, type DigestSource } from './block-auth.js';
import type { CandidateImage } from './candidate.js';
import type { DeltaSource } from './delta-source.js';
import { digestsOf } from './image-writer.js';
import { fetchingRecord, installRecord } from './progress.js';
import { REJECT_CODES } from './recovery.js';
import { endsTheRun, type UpdateSession } from './session.js';
import type { UpdateState } from './states.js';
import { VerifiedWriter } from './verified-writer.js';
import { fetchImageBody, usesStream, type PlacedBlock } from './qblock2-download.js';

type DownloadState = Extract<UpdateState, { name: 'download' }>;

/** Errors after which the full image is fetched instead of the delta: the delta, not the network, failed. */
function fallsBack(e: unknown): e is CoapfwError {
  return e instanceof CoapfwError && (e.code.startsWith('DELTA_') || REJECT_CODES.has(e.code));
}

/** The download state when the job's image comes from a delta; see the module comment. */
export async function downloadDelta(s: UpdateSession, st: DownloadState): Promise<UpdateState> {
  const img = st.job.images[st.image]!;
  const src = img.source as DeltaSource;
  try {
    await applyDeltaImage(s, st, img, src);
  } catch (e) {
    if (endsTheRun(e) || src.fallback === undefined || !fallsBack(e)) throw e;
    s.emit({ type: 'restart', reason: `the delta cannot be used (${e.code}: ${e.message}); fetching the full image` });
    return { name: 'download', job: { ...st.job, images: [src.fallback] }, image: 0, startBlock: 0, szx: s.opts.szx ?? 6, etag: undefined };
  }
  await s.journal.append(installRecord('fetched', s.installed, st.job, 0));
  return { name: 'verify-image', job: st.job, attempts: 0, fresh: st.delta === undefined };
}

/** Everything one run of the applier needs. */
interface Run {
  readonly s: UpdateSession;
  readonly st: DownloadState;
  readonly img: CandidateImage;
  readonly src: DeltaSource;
  readonly installed: SlotImage;
  readonly readSource: (offset: number, length: number) => Promise<Uint8Array>;
}

async function applyDeltaImage(s: UpdateSession, st: DownloadState, img: CandidateImage, src: DeltaSource): Promise<void> {
  const { flash, layout } = s.opts;
  if (src.frameSize % flash.eraseBlockSize !== 0) {
    throw new CoapfwError('SUIT_UNSUPPORTED', `delta: frames of ${src.frameSize} bytes do not end on this chip's ${flash.eraseBlockSize}-byte erase blocks`);
  }
  const installed = (await readBootState(flash, layout))?.components[img.component]?.primary;
  if (!installed) throw new CoapfwError('DELTA_SOURCE_MISMATCH', 'delta: no image is installed to apply it to');
  const source = layout.components[img.component]!.primary;
  const run: Run = { s, st, img, src, installed, readSource: (o, n) => flash.read(source.offset + o, n) };
  const deltaDigests = await digestsOf(s, src, src.auth);
  const targetDigests = await digestsOf(s, img, img.auth);
  const from = st.delta ?? { frame: 0, deltaOffset: DELTA_HEADER_BYTES };
  if (st.delta === undefined) {
    // A clean start: forget older progress before the slot is touched.
    await s.journal.append(applyingRecord(s, st, { frame: 0, deltaOffset: DELTA_HEADER_BYTES }, st.szx, undefined));
  }
  const header = st.delta === undefined ? undefined : await resumedHeader(run, deltaDigests);
  await stream(run, from, header, deltaDigests, targetDigests);
}

/** On a resume, the header again: the delta's first block (checked against the delta's digests when it has them). */
async function resumedHeader(run: Run, digests: DigestSource | undefined): Promise<DeltaHeader> {
  const { s, src } = run;
  const first = Math.min(digests?.blockSize ?? DELTA_HEADER_BYTES, src.size);
  const bytes = await rangeFetcher(s.opts, src.options, src.size)({ offset: 0, length: first });
  await digests?.check(0, bytes);
  return acceptHeader(run, bytes);
}

/** Step 1 of the module comment: the header against the manifest and the installed image, then the source's bytes. */
async function acceptHeader(run: Run, bytes: Uint8Array): Promise<DeltaHeader> {
  const { s, img, src, installed } = run;
  const h = decodeDeltaHeader(bytes, s.opts.deltaLimits);
  checkDeltaHeader(h, { targetSize: img.size, sourceSize: installed.size });
  if (h.frameSize !== src.frameSize) throw new CoapfwError('DELTA_RANGE', `delta: frames of ${h.frameSize} bytes, the manifest says ${src.frameSize}`);
  if (!equalBytes(h.targetSha256, img.digest)) throw new CoapfwError('DELTA_RANGE', 'delta: builds another image than the manifest names');
  if (!equalBytes(h.sourceSha256, installed.digest)) throw new CoapfwError('DELTA_SOURCE_MISMATCH', 'delta: made for another image than the one installed');
  await checkDeltaSource(h, installed.size, run.readSource);
  return h;
}

/** Fetch the delta from `from`, check each block, apply it, check and write each output block; journal each frame. */
async function stream(run: Run, from: { frame: number; deltaOffset: number }, resumed: DeltaHeader | undefined, deltaDigests: DigestSource | undefined, targetDigests: DigestSource | undefined): Promise<void> {
  const { s, st, img, src } = run;
  const { flash, layout } = s.opts;
  const fresh = resumed === undefined;
  const slot = updateSlot(layout, img.component);
  const szx = st.szx;
  const fetchStart = alignDown(from.deltaOffset, Math.max(deltaDigests?.blockSize ?? 1, blockSize(szx)));
  const deltaHash = sha256.create();
  const targetHash = sha256.create();
  let header = resumed;
  let applier: DeltaApplier | undefined;
  let etag: Uint8Array | undefined = st.etag;
  let lastSzx = szx;
  const headerBuf = new Uint8Array(DELTA_HEADER_BYTES);
  const outputStart = Math.min(from.frame * src.frameSize, img.size);
  const out = new VerifiedWriter({
    size: img.size,
    start: outputStart,
    ...(targetDigests ? { digests: targetDigests } : { assemble: Math.min(src.frameSize, 1024) }),
    sink: async (o, b) => {
      if (fresh) targetHash.update(b);
      await writeImageChunk(flash, slot, o, b);
    },
  });
  const start = (h: DeltaHeader): DeltaApplier =>
    new DeltaApplier(h, {
      readSource: run.readSource,
      write: (o, b) => out.write(o, b),
      from: { frame: from.frame, deltaOffset: from.deltaOffset, outputOffset: outputStart },
      onCheckpoint: async (cp) => {
        // A frame is journalled once all its bytes are on flash (an authenticated block may span frames).
        if (cp.frame < frameCount(h) && out.end === cp.outputOffset) await s.journal.append(applyingRecord(s, st, cp, lastSzx, etag));
      },
    });
  if (header) applier = start(header);
  const deltaIn = new VerifiedWriter({
    size: src.size,
    start: fetchStart,
    ...(deltaDigests ? { digests: deltaDigests } : {}),
    sink: async (offset, bytes) => {
      if (fresh) deltaHash.update(bytes);
      if (header === undefined) {
        if (offset < DELTA_HEADER_BYTES) headerBuf.set(bytes.subarray(0, DELTA_HEADER_BYTES - offset), offset);
        if (offset + bytes.length < DELTA_HEADER_BYTES) return;
        header = await acceptHeader(run, headerBuf);
        applier = start(header);
      }
      const skip = Math.max(from.deltaOffset, DELTA_HEADER_BYTES) - offset;
      if (skip < bytes.length) await applier!.push(bytes.subarray(Math.max(0, skip)));
    },
  });
  const place = async (b: PlacedBlock): Promise<void> => {
    etag = b.etag ?? etag;
    lastSzx = b.szx;
    await deltaIn.write(b.offset, b.data);
    s.blocksFetched++;
    s.emit({ type: 'block', image: st.image, num: b.num, offset: b.offset, bytes: b.data.length, imageSize: src.size });
  };
  const at = { startBlock: fetchStart / blockSize(szx), szx, etag };
  // Q-Block2 when the update has a stream (qblock2-download.ts: in order through its reorder buffer), else Block2.
  if (usesStream(s)) {
    await fetchImageBody(s, st.image, { options: src.options, size: src.size }, at, place);
  } else {
    s.emit({ type: 'transfer', image: st.image, mode: 'block2' });
    const blocks = fetchBlocks(s.opts.request, {
      runtime: s.opts.runtime,
      options: src.options,
      ...at,
      maxSize: src.size,
      retry: s.opts.blockRetry ?? { attempts: 5, baseMs: 1000, maxMs: 30_000 },
      signal: s.opts.signal,
      responseTimeoutMs: s.opts.responseTimeoutMs,
    });
    for await (const b of blocks) await place(b);
  }
  if (applier === undefined || deltaIn.end !== src.size) throw new CoapfwError('DELTA_TRUNCATED', `delta: the server sent ${deltaIn.end} bytes, the manifest says ${src.size}`);
  applier.end();
  if (out.end !== img.size) throw new CoapfwError('DELTA_TRUNCATED', `delta: built ${out.end} bytes of the ${img.size}-byte image`);
  if (fresh && !equalBytes(deltaHash.digest(), src.digest)) throw new CoapfwError('DIGEST_MISMATCH', 'delta: the delta does not match the manifest digest');
  if (fresh && !equalBytes(targetHash.digest(), img.digest)) throw new CoapfwError('DIGEST_MISMATCH', 'delta: the image it built does not match the manifest digest');
  s.emit({ type: 'delta', frames: frameCount(applier.header), workingMemory: applier.workingMemory });
}

/** The journal record after frame `cp.frame - 1`: phase `applying` (flash/journal.ts). */
function applyingRecord(s: UpdateSession, st: DownloadState, cp: Pick<DeltaCheckpoint, 'frame' | 'deltaOffset'>, szx: number, etag: Uint8Array | undefined): ReturnType<typeof fetchingRecord> {
  return { ...fetchingRecord(s.installed, st.job, szx, cp.frame, etag), phase: 'applying', imageSize: cp.deltaOffset };
}
