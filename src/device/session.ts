/**
 * One update run's working state: counters for the status report and the
 * open journal. Not durable: after a power cut only the journal remains.
 */
import { isCoapfwError } from '../errors.js';
import type { Journal, ResumeRecord } from '../flash/journal.js';
import { installedSequence } from './progress.js';
import type { UpdateResultKind, UpdateStatus } from './report.js';
import type { UpdateEvent, UpdateOptions } from './states.js';

/** One update run's working state (not durable: the journal is). */
export class UpdateSession {
  blocksFetched = 0;
  blocksResumed = 0;
  restarts = 0;
  failures = 0;
  candidateSequence: number | undefined;
  /** SHA-256 of the envelope being processed, once fetched. */
  envelopeDigest: Uint8Array | undefined;

  constructor(
    readonly opts: UpdateOptions,
    readonly journal: Journal,
  ) {}

  get record(): ResumeRecord | undefined {
    return this.journal.latest();
  }
  get installed(): number {
    return installedSequence(this.record);
  }
  emit(e: UpdateEvent): void {
    this.opts.onEvent?.(e);
  }
  status(result: UpdateResultKind, error?: unknown): UpdateStatus {
    const e = error instanceof Error ? error : undefined;
    return {
      result,
      installedSequence: this.installed,
      ...(this.candidateSequence !== undefined ? { candidateSequence: this.candidateSequence } : {}),
      blocksFetched: this.blocksFetched,
      blocksResumed: this.blocksResumed,
      restarts: this.restarts,
      ...(e ? { error: isCoapfwError(e) ? e.code : e.name, message: e.message } : {}),
    };
  }
}
