/**
 * How the update client uses the resume journal (flash/journal.ts): which
 * {@link ResumeRecord} it writes in each phase, and how it reads one back.
 *
 * Phases and the meaning of the fields:
 * - `idle`: nothing in progress. `installedSeq` is the sequence number of the
 *   running, confirmed manifest (anti-rollback, RFC 9124 §4.3.2);
 *   `envelopeDigestPrefix` / `imageDigestPrefix` name that manifest and image
 *   (zeros when unknown, e.g. after a rejected update); `candidateSeq` and
 *   `reverts` are 0.
 * - `fetching`: the image of envelope `envelopeDigestPrefix` (manifest
 *   `candidateSeq`) is being written into the secondary slot. Every block
 *   before `nextBlock` (size `2^(szx+4)`) is programmed and
 *   `nextBlock * blockSize` is erase-block aligned, so a resumed download
 *   starts exactly there (erasing that block first). `etag` is the image
 *   resource's ETag (empty until the first block arrived).
 * - `fetched`: the whole image is in the secondary slot.
 * - `installing`: a test boot was requested (or is about to be).
 *
 * An update of several images (one per component) is one job: `imageSize`
 * is their total, `imageDigestPrefix` names the set (device/candidate.ts:
 * one image's own digest, else a digest over the images' digests), and
 * `nextBlock` is a position in the set's download stream.
 *
 * In `fetched` and `installing`, `candidateSeq` is the candidate manifest's
 * sequence number (also written while `fetching`), which becomes
 * `installedSeq` once the new image is confirmed, and `reverts` counts the
 * test boots of this image that the bootloader reverted (bounded by
 * `maxInstallAttempts`, so an image that keeps failing its self-test is
 * eventually given up; a boot request cut short by a power cut does not
 * count). Keeping the old sequence until the confirm means a test boot
 * interrupted by a power cut (which the bootloader reverts) can be retried
 * with the same manifest.
 *
 * The record keeps 16-byte prefixes of the envelope and image digests
 * (flash/journal.ts explains why that is safe): compare a full digest with a
 * recorded one only through `matchesDigestPrefix`.
 */
import type { FlashBackend } from '../flash/backend.js';
import { Journal, digestPrefix, idleResumeRecord, matchesDigestPrefix, type ResumeRecord } from '../flash/journal.js';
import type { FlashLayout } from '../flash/layout.js';

/** Largest revert count a record holds (u8). */
const MAX_REVERTS = 0xff;

/** What an update in progress is about, as the journal stores it. */
export interface UpdateJob {
  /** SHA-256 of the SUIT envelope. */
  readonly envelopeDigest: Uint8Array;
  /** SHA-256 of the image (from the manifest). */
  readonly imageDigest: Uint8Array;
  /** Image size in bytes (from the manifest). */
  readonly size: number;
  /** The manifest's sequence number. */
  readonly sequence: number;
}

/**
 * Sequence number of the running image: 0 on a fresh device, whose journal
 * area is empty (`Journal.latest()` is undefined only then; it throws
 * `JOURNAL_CORRUPT` for an area holding records it cannot read, so an
 * unreadable journal never reads as "0 installed").
 */
export function installedSequence(rec: ResumeRecord | undefined): number {
  return rec?.installedSeq ?? 0;
}

/** The installed sequence number from the journal, or undefined when it cannot be read (for a failure report). */
export async function readInstalledSequence(flash: FlashBackend, layout: FlashLayout): Promise<number | undefined> {
  try {
    return installedSequence((await Journal.open(flash, layout)).latest());
  } catch {
    return undefined;
  }
}

/** A download record: blocks before `nextBlock` are in the slot. */
export function fetchingRecord(installedSeq: number, job: UpdateJob, szx: number, nextBlock: number, etag: Uint8Array | undefined): ResumeRecord {
  return {
    phase: 'fetching',
    szx,
    etag: etag?.slice() ?? new Uint8Array(0),
    nextBlock,
    imageSize: job.size,
    installedSeq,
    candidateSeq: job.sequence,
    reverts: 0,
    envelopeDigestPrefix: digestPrefix(job.envelopeDigest),
    imageDigestPrefix: digestPrefix(job.imageDigest),
  };
}

/** A `fetched` or `installing` record: the whole image of `job` is in the secondary slot. */
export function installRecord(
  phase: 'fetched' | 'installing',
  installedSeq: number,
  job: UpdateJob,
  reverts: number,
): ResumeRecord {
  return {
    phase,
    szx: 0,
    etag: new Uint8Array(0),
    nextBlock: 0,
    imageSize: job.size,
    installedSeq,
    candidateSeq: job.sequence,
    reverts: Math.min(reverts, MAX_REVERTS),
    envelopeDigestPrefix: digestPrefix(job.envelopeDigest),
    imageDigestPrefix: digestPrefix(job.imageDigest),
  };
}

/**
 * After a reverted boot: the `installing` record with one more reverted test
 * boot, or undefined when there is nothing to count (no install in progress,
 * or the running image is the candidate itself). `runningDigest` names the
 * running set (undefined: one of its components holds no image, so it is not
 * the candidate). Saturates at 255.
 */
export function revertedBootRecord(rec: ResumeRecord | undefined, runningDigest: Uint8Array | undefined): ResumeRecord | undefined {
  if (rec?.phase !== 'installing' || (runningDigest !== undefined && matchesDigestPrefix(runningDigest, rec.imageDigestPrefix))) return undefined;
  return { ...rec, reverts: Math.min(rec.reverts + 1, MAX_REVERTS) };
}

/**
 * After a boot, with the running image confirmed: if the journal describes a
 * finished install of exactly that image, record its sequence number as
 * installed (one idle record). Returns true when it did.
 */
export async function reconcileJournal(journal: Journal, runningDigest: Uint8Array | undefined): Promise<boolean> {
  const rec = journal.latest();
  if (rec === undefined || (rec.phase !== 'fetched' && rec.phase !== 'installing')) return false;
  if (runningDigest === undefined || !matchesDigestPrefix(runningDigest, rec.imageDigestPrefix)) return false;
  await journal.append(idleResumeRecord(rec.candidateSeq, rec));
  return true;
}
