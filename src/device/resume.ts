/**
 * Where the update client continues after a power cut, from the journal's
 * record of the same envelope (updater.ts verify): a download (download.ts
 * `resumePoint`), or a delta being applied (delta-apply.ts).
 */
import { blockSize } from '../codec/block.js';
import { DELTA_HEADER_BYTES } from '../delta/format.js';
import type { ResumeRecord } from '../flash/resume-record.js';
import { resumePoint } from './download.js';
import type { UpdateSession } from './session.js';
import type { Candidate, UpdateState } from './states.js';

type DownloadState = Extract<UpdateState, { name: 'download' }>;

/**
 * Where a journal record of `job` resumes: an `applying` record continues
 * the delta at its frame; a `fetching` record of a job whose image is a
 * delta means the full image was being fetched (the delta fell back), so
 * that download continues; anything else is download.ts's resume point.
 */
export function resumeJob(s: UpdateSession, job: Candidate, rec: ResumeRecord): DownloadState {
  const img = job.images[0]!;
  const src = img.source.kind === 'delta' ? img.source : undefined;
  if (rec.phase === 'applying') {
    const frame = rec.nextBlock;
    const ok = src !== undefined && job.images.length === 1 && frame * src.frameSize < img.size && rec.imageSize >= DELTA_HEADER_BYTES && rec.imageSize < src.size;
    if (!ok) return { name: 'download', job, image: 0, startBlock: 0, szx: s.opts.szx ?? 6, etag: undefined };
    s.blocksResumed = Math.floor(rec.imageSize / blockSize(rec.szx));
    s.emit({ type: 'resume', fromBlock: s.blocksResumed, blockSize: blockSize(rec.szx), phase: 'applying' });
    return { name: 'download', job, image: 0, startBlock: 0, szx: rec.szx, etag: rec.etag.length > 0 ? rec.etag : undefined, delta: { frame, deltaOffset: rec.imageSize } };
  }
  return resumePoint(s, src?.fallback ? { ...job, images: [src.fallback] } : job, rec);
}
