/**
 * The download state of the update client: every image of the candidate
 * set, in component order, straight from each Block2 or Q-Block2 response
 * (or from the envelope, for an integrated payload) into its component's secondary slot,
 * one block in memory, with a journal record per completed erase block and
 * one where each image ends, so a power cut costs at most one erase block.
 * Positions in the journal are offsets in the set's download stream
 * (candidate.ts).
 */
import { fetchBlocks, type FetchedBlock } from '../blockwise/fetch.js';
import { blockSize } from '../codec/block.js';
import { CoapfwError } from '../errors.js';
import { resumeOffset } from '../flash/image.js';
import type { ResumeRecord } from '../flash/resume-record.js';
import { locate, type CandidateImage } from './candidate.js';
import { downloadDelta } from './delta-apply.js';
import { openImageWriter } from './image-writer.js';
import { fetchImageBody, usesStream, type PlacedBlock } from './qblock2-download.js';
import { stageInPlace } from './inplace.js';
import { fetchingRecord, installRecord } from './progress.js';
import type { UpdateSession } from './session.js';
import type { Candidate, UpdateState } from './states.js';
import type { VerifiedWriter } from './verified-writer.js';

type DownloadState = Extract<UpdateState, { name: 'download' }>;

/** An integrated payload as the blocks a fetch would yield, from block `start` (nothing to wait for). */
function* payloadBlocks(bytes: Uint8Array, szx: number, start: number): Generator<FetchedBlock> {
  const bs = blockSize(szx);
  for (let num = start; num * bs < bytes.length || (num === 0 && bytes.length === 0); num++) {
    const offset = num * bs;
    const data = bytes.subarray(offset, Math.min(offset + bs, bytes.length));
    yield { num, szx, offset, data, more: offset + data.length < bytes.length, etag: undefined, total: bytes.length };
  }
}

/** Blocks of the images before image `k` (at block size `bs`): what a resume there does not fetch again. */
function blocksBefore(job: Candidate, k: number, bs: number): number {
  return job.images.slice(0, k).reduce((n, i) => n + Math.ceil(i.size / bs), 0);
}

/**
 * Where a `fetching` record of this job resumes: the image holding its
 * position and the start of the erase block there (which may hold a torn
 * write). Block 0 of the image when its ETag is unknown or it comes from the
 * envelope (nothing to save: it is in memory).
 */
export function resumePoint(s: UpdateSession, job: Candidate, rec: ResumeRecord): DownloadState {
  const bs = blockSize(rec.szx);
  const szx = s.opts.szx ?? 6;
  const { image, local } = locate(job.images, rec.nextBlock * bs);
  const img = job.images[image]!;
  const from = resumeOffset(s.opts.flash, local);
  const resumable = local <= img.size && from % bs === 0 && rec.etag.length > 0 && img.source.kind === 'fetch';
  const startBlock = resumable ? from / bs : 0;
  s.blocksResumed = blocksBefore(job, image, bs) + startBlock;
  s.emit({ type: 'resume', fromBlock: s.blocksResumed, blockSize: bs, phase: 'fetching' });
  return resumable
    ? { name: 'download', job, image, startBlock, szx: rec.szx, etag: rec.etag }
    : { name: 'download', job, image, startBlock: 0, szx, etag: undefined };
}

/**
 * Fetch (or copy from the envelope) image `k` from `startBlock`; returns the
 * block size exponent it ended with. With a response stream, Q-Block2 when
 * the server does it (qblock2-download.ts), else Block2 in order.
 */
async function downloadImage(s: UpdateSession, job: Candidate, k: number, startBlock: number, szx: number, etag: Uint8Array | undefined): Promise<number> {
  const { opts } = s;
  const img: CandidateImage = job.images[k]!;
  const start = startBlock * blockSize(szx);
  // Every block goes through here to its slot, checked first when the image has block digests (verified-writer.ts).
  const writer = await openImageWriter(s, img, start);
  const slot = slotWriter(s, job, k, writer, start, szx);
  if (img.source.kind === 'integrated') {
    for (const b of payloadBlocks(img.source.bytes, szx, startBlock)) await slot.place(b);
  } else if (usesStream(s)) {
    await fetchImageBody(s, k, { options: img.source.options, size: img.size }, { startBlock, szx, etag }, (b) => slot.place(b));
  } else {
    s.emit({ type: 'transfer', image: k, mode: 'block2' });
    const blocks = fetchBlocks(opts.request, {
      runtime: opts.runtime,
      options: img.source.options,
      startBlock,
      szx,
      etag,
      // The endless-data attack: refuse as soon as a block goes past the size the image-match checks state.
      maxSize: img.size,
      retry: opts.blockRetry ?? { attempts: 5, baseMs: 1000, maxMs: 30_000 },
      signal: opts.signal,
      responseTimeoutMs: opts.responseTimeoutMs,
    });
    for await (const b of blocks) await slot.place(b);
  }
  if (writer.end !== img.size) {
    throw new CoapfwError('DIGEST_MISMATCH', `image${job.images.length > 1 ? ` ${k}` : ''}: ${img.source.kind === 'fetch' ? 'the server sent' : 'the envelope holds'} ${writer.end} bytes, the manifest says ${img.size}`);
  }
  return slot.szx;
}

/**
 * Where the blocks of image `k` go, in image order: the writer, the
 * counters, a 'block' event, and a journal record once per completed erase
 * block (so a power cut costs at most one erase block).
 */
function slotWriter(s: UpdateSession, job: Candidate, k: number, writer: VerifiedWriter, start: number, szx: number): { place(b: PlacedBlock): Promise<void>; readonly szx: number } {
  const img = job.images[k]!;
  const ebs = s.opts.flash.eraseBlockSize;
  let journaledAt = start;
  let lastSzx = szx;
  return {
    get szx() {
      return lastSzx;
    },
    async place(b) {
      await writer.write(b.offset, b.data);
      if (img.source.kind === 'fetch') s.blocksFetched++;
      const end = writer.end;
      lastSzx = b.szx;
      s.emit({ type: 'block', image: k, num: b.num, offset: b.offset, bytes: b.data.length, imageSize: img.size });
      const bs = blockSize(b.szx);
      // Journal once per completed erase block; `end` is then erase-block aligned.
      if (b.more && Math.floor(end / ebs) > Math.floor(journaledAt / ebs) && end % bs === 0) {
        const next = (img.start + end) / bs;
        await s.journal.append(fetchingRecord(s.installed, job, b.szx, next, b.etag));
        journaledAt = end;
        s.emit({ type: 'journal', nextBlock: next, blockSize: bs });
      }
    },
  };
}

/** The download state: image `st.image` from `st.startBlock`, then every image after it, then `fetched`. */
export async function download(s: UpdateSession, st: DownloadState): Promise<UpdateState> {
  const { job } = st;
  if (job.images[st.image]?.source.kind === 'delta') return downloadDelta(s, st);
  const fresh = st.image === 0 && st.startBlock === 0;
  // A single-bank device keeps the manifest and the digests before it overwrites its image.
  if (fresh) await stageInPlace(s, job);
  // A clean start: forget any older progress before a slot is touched.
  if (fresh) await s.journal.append(fetchingRecord(s.installed, job, st.szx, 0, undefined));
  for (let k = st.image; k < job.images.length; k++) {
    const first = k === st.image;
    const szx = await downloadImage(s, job, k, first ? st.startBlock : 0, first ? st.szx : s.opts.szx ?? 6, first ? st.etag : undefined);
    const next = job.images[k + 1];
    // Image k is complete: a resume goes on with the next one (its stream start is a multiple of every block size).
    if (next !== undefined) await s.journal.append(fetchingRecord(s.installed, job, szx, next.start / blockSize(szx), undefined));
  }
  await s.journal.append(installRecord('fetched', s.installed, job, 0));
  return { name: 'verify-image', job, attempts: 0, fresh };
}
