/**
 * One update run's working state: counters for the status report and the
 * open journal. Not durable: after a power cut only the journal remains.
 */
import { isCoapfwError } from '../errors.js';
import type { Journal, ResumeRecord } from '../flash/journal.js';
import { installedSequence } from './progress.js';
import type { UpdateResultKind, UpdateStatus } from './report.js';
import type { UpdateEvent, UpdateOptions } from './states.js';
import type { DeviceTrust } from './trust-device.js';

/** One update run's working state (not durable: the journal is). */
export class UpdateSession {
  blocksFetched = 0;
  blocksResumed = 0;
  restarts = 0;
  failures = 0;
  candidateSequence: number | undefined;
  /** SHA-256 of the envelope being processed, once fetched. */
  envelopeDigest: Uint8Array | undefined;
  /** The envelope being processed (a single-bank device stages it before it overwrites its image). */
  envelope: Uint8Array | undefined;
  /** The trust store and state, when the layout has a trust area (opened at power-on). */
  trust: DeviceTrust | undefined;

  constructor(
    readonly opts: UpdateOptions,
    readonly journal: Journal,
  ) {}

  get record(): ResumeRecord | undefined {
    return this.journal.latest();
  }
  get trustVersion(): number | undefined {
    return this.trust?.state.version;
  }
  get revocationSequence(): number | undefined {
    return this.trust?.state.revocation.sequence;
  }
  get installed(): number {
    return installedSequence(this.record);
  }
  emit(e: UpdateEvent): void {
    this.opts.onEvent?.(e);
  }
  status(result: UpdateResultKind, error?: unknown): UpdateStatus {
    let installed: number | undefined;
    try {
      installed = this.installed;
    } catch {
      installed = undefined; // the journal became unreadable: say nothing rather than a wrong number
    }
    return makeStatus(result, this, installed, error);
  }
}

/** Counters of an update run, as a status reports them. */
export interface RunCounters {
  readonly candidateSequence?: number | undefined;
  readonly blocksFetched: number;
  readonly blocksResumed: number;
  readonly restarts: number;
  readonly trustVersion?: number | undefined;
  readonly revocationSequence?: number | undefined;
}

const NOTHING_DONE: RunCounters = { blocksFetched: 0, blocksResumed: 0, restarts: 0 };

/**
 * The status report of a run (or of one that could not start: `counters`
 * default to nothing done). `installed` undefined: unknown, left out.
 */
export function makeStatus(result: UpdateResultKind, counters: RunCounters = NOTHING_DONE, installed?: number, error?: unknown): UpdateStatus {
  const e = error instanceof Error ? error : error === undefined ? undefined : new Error(String(error));
  return {
    result,
    ...(installed !== undefined ? { installedSequence: installed } : {}),
    ...(counters.candidateSequence !== undefined ? { candidateSequence: counters.candidateSequence } : {}),
    blocksFetched: counters.blocksFetched,
    blocksResumed: counters.blocksResumed,
    restarts: counters.restarts,
    ...(counters.trustVersion !== undefined ? { trustVersion: counters.trustVersion, revocationSequence: counters.revocationSequence } : {}),
    ...(e ? { error: isCoapfwError(e) ? e.code : e.name, message: e.message } : {}),
    ...(isCoapfwError(e) && e.block !== undefined ? { block: e.block } : {}),
  };
}

/** Errors no status can follow: the device lost power, or the caller aborted. */
export function endsTheRun(e: unknown): boolean {
  return isCoapfwError(e, 'POWER_CUT') || isCoapfwError(e, 'ABORTED');
}
