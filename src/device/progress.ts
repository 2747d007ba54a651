/**
 * How the update client uses the resume journal (flash/journal.ts): which
 * {@link ResumeRecord} it writes in each phase, and how it reads one back.
 *
 * Phases and the meaning of the fields:
 * - `idle`: nothing in progress. `installedSeq` is the sequence number of the
 *   running, confirmed manifest (anti-rollback, RFC 9124 §4.3.2);
 *   `envelopeDigest` / `imageDigest` name that manifest and image (zeros when
 *   unknown, e.g. after a rejected update).
 * - `fetching`: the image of envelope `envelopeDigest` is being written into
 *   the secondary slot. Every block before `nextBlock` (size `2^(szx+4)`) is
 *   programmed and `nextBlock * blockSize` is erase-block aligned, so a
 *   resumed download starts exactly there (erasing that block first). `etag`
 *   is the image resource's ETag (empty until the first block arrived).
 * - `fetched`: the whole image is in the secondary slot.
 * - `installing`: a test boot was requested (or is about to be).
 *
 * In `fetched` and `installing` the download is over, so two fields that
 * only a download needs are reused: `etag` holds the candidate manifest's
 * sequence number (8 bytes big-endian), which becomes `installedSeq` once the
 * new image is confirmed, and `nextBlock` counts the test boots of this image
 * that the bootloader reverted (bounded by `maxInstallAttempts`, so an image
 * that keeps failing its self-test is eventually given up; a boot request
 * cut short by a power cut does not count). Keeping the old sequence until the
 * confirm means a test boot interrupted by a power cut (which the bootloader
 * reverts) can be retried with the same manifest.
 */
import { CoapfwError } from '../errors.js';
import type { Journal, ResumeRecord } from '../flash/journal.js';

const ZERO32 = new Uint8Array(32);

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

/** Sequence number of the running image (0 on a device that never recorded one). */
export function installedSequence(rec: ResumeRecord | undefined): number {
  return rec?.installedSeq ?? 0;
}

/** An idle record: `seq` installed; optionally naming the installed envelope and image. */
export function idleRecord(seq: number, installed?: Pick<UpdateJob, 'envelopeDigest' | 'imageDigest'>): ResumeRecord {
  return {
    phase: 'idle',
    slot: 'secondary',
    szx: 0,
    etag: new Uint8Array(0),
    nextBlock: 0,
    imageSize: 0,
    installedSeq: seq,
    envelopeDigest: installed?.envelopeDigest.slice() ?? ZERO32.slice(),
    imageDigest: installed?.imageDigest.slice() ?? ZERO32.slice(),
  };
}

/** A download record: blocks before `nextBlock` are in the slot. */
export function fetchingRecord(installedSeq: number, job: UpdateJob, szx: number, nextBlock: number, etag: Uint8Array | undefined): ResumeRecord {
  return {
    phase: 'fetching',
    slot: 'secondary',
    szx,
    etag: etag?.slice() ?? new Uint8Array(0),
    nextBlock,
    imageSize: job.size,
    installedSeq,
    envelopeDigest: job.envelopeDigest.slice(),
    imageDigest: job.imageDigest.slice(),
  };
}

function seqBytes(seq: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(seq));
  return out;
}

/** A `fetched` or `installing` record (see the file comment for the reused fields). */
export function installRecord(
  phase: 'fetched' | 'installing',
  installedSeq: number,
  job: UpdateJob,
  reverts: number,
): ResumeRecord {
  return {
    phase,
    slot: 'secondary',
    szx: 0,
    etag: seqBytes(job.sequence),
    nextBlock: reverts,
    imageSize: job.size,
    installedSeq,
    envelopeDigest: job.envelopeDigest.slice(),
    imageDigest: job.imageDigest.slice(),
  };
}

/** The candidate sequence number of a `fetched` / `installing` record. */
export function candidateSequence(rec: ResumeRecord): number {
  if ((rec.phase !== 'fetched' && rec.phase !== 'installing') || rec.etag.length !== 8) {
    throw new CoapfwError('JOURNAL_CORRUPT', `journal: a ${rec.phase} record carries no candidate sequence`);
  }
  const seq = new DataView(rec.etag.buffer, rec.etag.byteOffset, 8).getBigUint64(0);
  if (seq > BigInt(Number.MAX_SAFE_INTEGER)) throw new CoapfwError('JOURNAL_CORRUPT', 'journal: candidate sequence out of range');
  return Number(seq);
}

/** The job a non-idle record describes. */
export function jobOf(rec: ResumeRecord, sequence: number): UpdateJob {
  return { envelopeDigest: rec.envelopeDigest, imageDigest: rec.imageDigest, size: rec.imageSize, sequence };
}

/** Byte equality (digests and ETags are not secrets). */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * After a boot, with the running image confirmed: if the journal describes a
 * finished install of exactly that image, record its sequence number as
 * installed (one idle record). Returns true when it did.
 */
export async function reconcileJournal(journal: Journal, runningDigest: Uint8Array | undefined): Promise<boolean> {
  const rec = journal.latest();
  if (rec === undefined || (rec.phase !== 'fetched' && rec.phase !== 'installing')) return false;
  if (runningDigest === undefined || !sameBytes(runningDigest, rec.imageDigest)) return false;
  await journal.append(idleRecord(candidateSequence(rec), rec));
  return true;
}
