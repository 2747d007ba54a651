/**
 * Single-bank (in-place) updates, as steps of the update client
 * (updater.ts): for a device whose flash holds one image, the new image is
 * written over the running one, block by block, each block checked against
 * the manifest's block digests before it is written (verified-writer.ts).
 *
 * Order of work, so that a power cut at any flash operation is recovered
 * (boot-inplace.ts explains the boot side):
 * 1. verify: the manifest must carry usable block digests and fit the
 *    recovery area with its top list (update-plan.ts); otherwise it is
 *    rejected before anything is written.
 * 2. stage: the top list is fetched and checked against the signed root,
 *    then the envelope and the top list are written to the recovery area.
 * 3. journal `fetching` at block 0: from here on the slot may be
 *    overwritten, and the boot model knows which update does it.
 * 4. overwrite, erase block by erase block, with a journal record after each
 *    (as an A/B download does into the secondary): a cut costs at most the
 *    erase block in progress.
 * 5. `fetched`, hash the whole slot against the manifest's digest, then one
 *    boot-log record names the new image (it runs from the next boot) and
 *    the journal records its sequence number.
 *
 * Once step 3 is done nothing forgets the update: a bad block, a server
 * that went away, a digest that does not match are `failed` (the update
 * resumes from the journal), never `rejected` (which would drop the only
 * record of what the slot is becoming).
 */
import { equalBytes } from '@noble/curves/utils.js';
import { CoapfwError } from '../errors.js';
import { matchesDigestPrefix } from '../flash/resume-record.js';
import { readStaging, writeStaging } from '../flash/staging.js';
import { commitInPlaceImage } from './boot-inplace.js';
import { digestsOf } from './image-writer.js';
import { reconcileJournal } from './progress.js';
import type { UpdateSession } from './session.js';
import type { Candidate, UpdateState } from './states.js';

/**
 * Step 2 on a single-bank device (nothing on A/B): stage the envelope and
 * the checked top list of `job` before the slot is touched. Skips the write
 * when exactly that is staged already.
 */
export async function stageInPlace(s: UpdateSession, job: Candidate): Promise<void> {
  const { flash, layout } = s.opts;
  const area = layout.recovery?.staging;
  if (area === undefined) return;
  const img = job.images[0]!;
  const digests = await digestsOf(s, img, img.auth);
  if (digests === undefined || s.envelope === undefined) throw new CoapfwError('SUIT_UNSUPPORTED', 'in-place update: no block digests or no envelope to stage');
  const staged = await readStaging(flash, area);
  if (staged && equalBytes(staged.envelope, s.envelope) && equalBytes(staged.topList, digests.topList)) return;
  await writeStaging(flash, area, { envelope: s.envelope, topList: digests.topList });
}

/** Whether this run's update is overwriting a single-bank slot (step 3 done): then it must never be forgotten. */
export function overwriting(s: UpdateSession): boolean {
  if (s.opts.layout.recovery === undefined) return false;
  const rec = s.record;
  return rec !== undefined && rec.phase !== 'idle' && s.envelopeDigest !== undefined && matchesDigestPrefix(s.envelopeDigest, rec.envelopeDigestPrefix);
}

/** Step 5 on a single-bank device: the slot holds the verified image; name it in the boot record, record the sequence. */
export async function installInPlace(s: UpdateSession, job: Candidate): Promise<UpdateState> {
  const img = job.images[0]!;
  await commitInPlaceImage(s.opts.flash, s.opts.layout, { size: img.size, digest: img.digest });
  // The journal says `fetched`; the running image is now the candidate: record it as installed.
  await reconcileJournal(s.journal, img.digest);
  return { name: 'report', status: s.status('installed') };
}
