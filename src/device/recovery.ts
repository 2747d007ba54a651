/**
 * What the update client does when a step fails (a small wrapper around the
 * transition function, STYLE.md §3): restart a download whose image changed,
 * report a refusal, or retry a transient failure after a jittered
 * exponential back-off on the injected Runtime (bounded attempts). Every
 * failure ends in the report state, so the caller always gets a status and
 * the status tracker a POST; only a power cut, an abort, or a failure of the
 * report itself (the caller's onStatus) propagates.
 */
import { isTransient, retryAfterMs } from '../blockwise/fetch.js';
import { CoapfwError } from '../errors.js';
import { backoffDelay, sleep } from '../messaging/retry.js';
import { idleResumeRecord, matchesDigestPrefix } from '../flash/resume-record.js';
import { overwriting } from './inplace.js';
import { endsTheRun, type UpdateSession } from './session.js';
import type { Candidate, UpdateState } from './states.js';

/** Errors that mean "this update must not be installed" (the running image stays). */
export const REJECT_CODES: ReadonlySet<string> = new Set([
  'SUIT_MALFORMED', 'SUIT_LIMIT', 'SUIT_UNSUPPORTED', 'DIGEST_MISMATCH', 'SIGNATURE_INVALID', 'NO_SIGNATURE',
  'UNTRUSTED_KEY', 'ROLLBACK', 'VENDOR_MISMATCH', 'CLASS_MISMATCH', 'CONDITION_FAILED', 'KEY_INVALID',
  'TOO_LARGE', 'IMAGE_TOO_LARGE', 'UPDATE_FAILED',
  // Trust store devices (suit/trust-verify.ts): not signed as the trust set requires.
  'DOCUMENT_TYPE', 'TRUST_NO_POLICY', 'KEY_NOT_AUTHORIZED', 'KEY_REVOKED', 'TRUST_THRESHOLD',
]);

function maxRestarts(s: UpdateSession): number {
  return s.opts.maxRestarts ?? 3;
}

/** Start the download of `job` over from block 0 (bounded by `maxRestarts`: `UPDATE_FAILED` beyond). */
export function restart(s: UpdateSession, job: Candidate, reason: string): UpdateState {
  s.restarts++;
  if (s.restarts > maxRestarts(s)) throw new CoapfwError('UPDATE_FAILED', `update: gave up after ${s.restarts - 1} restarts (${reason})`);
  s.emit({ type: 'restart', reason });
  return { name: 'download', job, image: 0, startBlock: 0, szx: s.opts.szx ?? 6, etag: undefined };
}

/**
 * Forget a download of the envelope being processed, so that nothing resumes
 * it. Progress of another envelope stays (a bad manifest must not cost a good
 * download), and so does an `installing` record: it carries the `reverts`
 * count that keeps a given-up image from being downloaded and tried again.
 */
async function forgetDownload(s: UpdateSession): Promise<void> {
  // Single bank: the journal is the only record of what the slot is becoming (device/inplace.ts).
  if (s.opts.layout.recovery) return;
  const rec = s.record;
  const same = rec !== undefined && s.envelopeDigest !== undefined && matchesDigestPrefix(s.envelopeDigest, rec.envelopeDigestPrefix);
  if (same && (rec.phase === 'fetching' || rec.phase === 'fetched' || rec.phase === 'applying')) await s.journal.append(idleResumeRecord(rec.installedSeq));
}

/**
 * What to do after `step` threw `e` in `state`: the next state, which is the
 * report of a failure when nothing else applies (see the file comment).
 */
export async function recover(s: UpdateSession, state: UpdateState, e: unknown): Promise<UpdateState> {
  if (endsTheRun(e) || state.name === 'report') throw e;
  try {
    return await next(s, state, e);
  } catch (e2) {
    if (endsTheRun(e2)) throw e2;
    // recovery itself failed (a journal write, a bug): still report, as failed.
    return { name: 'report', status: s.status('failed', e2) };
  }
}

async function next(s: UpdateSession, state: UpdateState, e: unknown): Promise<UpdateState> {
  if (!(e instanceof CoapfwError)) return { name: 'report', status: s.status('failed', e) };
  if (e.code === 'ETAG_MISMATCH' && state.name === 'download') {
    if (s.restarts >= maxRestarts(s)) {
      // The image keeps changing on the server: the progress so far is of a version that is gone.
      await forgetDownload(s);
      const gaveUp = new CoapfwError('UPDATE_FAILED', `update: gave up after ${s.restarts} restarts (the image resource keeps changing)`, { cause: e });
      return { name: 'report', status: s.status('failed', gaveUp) };
    }
    // RFC 7959 §2.4: the image changed under us; never stitch two versions.
    return restart(s, state.job, 'the image resource changed (ETag)');
  }
  if (e.code === 'ETAG_MISMATCH' && state.name === 'check' && s.restarts < (s.opts.maxRestarts ?? 3)) {
    // The envelope was replaced while it was being fetched: fetch the new one.
    s.restarts++;
    s.emit({ type: 'restart', reason: 'the manifest resource changed (ETag)' });
    return { name: 'check' };
  }
  if (REJECT_CODES.has(e.code)) {
    // A single-bank device overwriting its image cannot refuse the update any more: it must finish it, later.
    if (overwriting(s)) return { name: 'report', status: s.status('failed', e) };
    // A block refused before it was written: what is in the slot was verified block by block, so a retry resumes.
    if (!(e.code === 'DIGEST_MISMATCH' && e.block !== undefined && state.name === 'download')) await forgetDownload(s);
    return { name: 'report', status: s.status('rejected', e) };
  }
  const retry = s.opts.retry ?? { attempts: 4, baseMs: 2000, maxMs: 60_000 };
  s.failures++;
  if (!isTransient(e) || s.failures >= (retry.attempts ?? 4)) return { name: 'report', status: s.status('failed', e) };
  // A server's "try again in N seconds" (5.03/4.29 + Max-Age) is honoured, as the block fetch does.
  const random = (): number => s.opts.runtime.random();
  const delayMs = retryAfterMs(e, s.opts.blockRetry ?? {}, random) ?? backoffDelay(s.failures, retry, random);
  s.emit({ type: 'retry', attempt: s.failures, delayMs, error: e.code });
  await sleep(s.opts.runtime, delayMs, s.opts.signal);
  return { name: 'check' };
}
