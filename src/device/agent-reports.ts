/**
 * The device's status reports, sent one at a time and in order, each with a
 * report counter above every one the server accepted (the server refuses a
 * counter that is not above its last with 4.09: replays write nothing). The
 * counter continues from the registration answer, so a device that lost its
 * RAM (a kill, a power cut) keeps counting where the server is; it is taken
 * when a report is first sent and kept when the same report is sent again
 * after a timeout, so a report whose answer was lost and that the server
 * already took comes back as 4.09, which means delivered.
 *
 * Bounded: at most `maxQueued` reports wait; a newer progress report replaces
 * a waiting one of the same release, and when the queue is full the oldest
 * progress report goes first (a transition is never dropped for progress).
 */
import { Code, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption } from '../codec/options.js';
import type { Requester } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import { backoffDelay, type RetryPolicy } from '../messaging/retry.js';
import { postCbor, reportBody, type AgentReport } from './agent-wire.js';

/** What happened to a report, for the agent's events. */
export type ReportOutcome =
  | { readonly kind: 'accepted'; readonly rseq: number; readonly report: AgentReport }
  /** 4.09: the server already holds this counter (an earlier copy was taken). */
  | { readonly kind: 'duplicate'; readonly rseq: number; readonly report: AgentReport }
  /** Refused for good (4.00, 4.03, 4.13 ...): dropped. */
  | { readonly kind: 'dropped'; readonly rseq: number; readonly report: AgentReport; readonly code: number }
  /** The server does not know the device (4.04): held until it registers again. */
  | { readonly kind: 'unknown-device' }
  /** No answer: kept and sent again after a back-off. */
  | { readonly kind: 'unreachable'; readonly error: string };

/** Options of {@link Reporter}. */
export interface ReporterOptions {
  readonly request: Requester;
  readonly runtime: Runtime;
  /** Back-off between attempts of one report. Default 1 s base, 60 s max. */
  readonly backoff?: RetryPolicy;
  /** Reports waiting at most. Default 64. */
  readonly maxQueued?: number;
  readonly onOutcome?: (o: ReportOutcome) => void;
  readonly signal?: AbortSignal;
}

interface Queued {
  readonly report: AgentReport;
  rseq: number | undefined;
}

/** Sends a device's reports to `/d/<id>/r` once it is registered. */
export class Reporter {
  private readonly queue: Queued[] = [];
  private path: string | undefined;
  private counter = 0;
  private running = false;
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly idle: (() => void)[] = [];
  /** Reports accepted (or found already accepted). */
  delivered = 0;
  /** Progress reports dropped or replaced before they were sent. */
  coalesced = 0;

  constructor(private readonly o: ReporterOptions) {}

  /** The server's answer to a registration: where reports go and the highest counter it accepted. */
  registered(deviceId: string, rseq: number): void {
    this.path = `/d/${encodeURIComponent(deviceId)}/r`;
    this.counter = Math.max(this.counter, rseq);
    // A report refused as unknown-device gets a new counter above the server's.
    for (const q of this.queue) if (q.rseq !== undefined && q.rseq <= rseq) q.rseq = undefined;
    this.wake?.(); // the server is back: no need to sit out a back-off
    this.kick();
  }

  /** The counter of the last report sent. */
  get lastCounter(): number {
    return this.counter;
  }

  /** Reports waiting (and the one in flight). */
  get pending(): number {
    return this.queue.length;
  }

  /** Queue `report`. */
  enqueue(report: AgentReport): void {
    if (this.closed) return;
    const tail = this.queue.at(-1);
    // Not yet sent (no counter): a newer progress report of the same release says all it said.
    if (report.state === 'downloading' && tail !== undefined && tail.rseq === undefined && isProgressOf(tail.report, report.seq)) {
      this.queue[this.queue.length - 1] = { report, rseq: undefined };
      this.coalesced++;
    } else {
      this.queue.push({ report, rseq: undefined });
    }
    const max = this.o.maxQueued ?? 64;
    while (this.queue.length > max) {
      // Never the one in flight; progress first, else the oldest waiting transition.
      const free = (k: number): boolean => k > 0 || !this.running;
      const i = this.queue.findIndex((q, k) => free(k) && q.report.state === 'downloading');
      this.queue.splice(i >= 0 ? i : this.queue.findIndex((_q, k) => free(k)), 1);
      this.coalesced++;
    }
    this.kick();
  }

  /** Resolves when every queued report was delivered or dropped, or the reporter closed (tests, a clean stop). */
  drained(): Promise<void> {
    if (this.queue.length === 0 || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Stop sending; waiting reports are forgotten (the registry learns the state at the next registration). */
  close(): void {
    this.closed = true;
    this.wake?.();
    this.settle();
  }

  private settle(): void {
    if (this.queue.length > 0 && !this.closed) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private kick(): void {
    if (this.running || this.closed || this.path === undefined || this.queue.length === 0) return;
    this.running = true;
    this.pump().catch((e: unknown) => {
      // Only an abort leaves pump (send turns every other failure into an outcome): the agent is stopping.
      if (!isCoapfwError(e, 'ABORTED')) throw e;
      this.close();
    });
  }

  private async pump(): Promise<void> {
    try {
      await this.sendAll();
    } finally {
      this.running = false; // synchronously with the loop's end, so the next kick starts a new pump
    }
  }

  private async sendAll(): Promise<void> {
    let failures = 0;
    while (!this.closed && this.queue.length > 0 && this.path !== undefined) {
      const head = this.queue[0]!;
      head.rseq ??= ++this.counter;
      const outcome = await this.send(this.path, head);
      this.o.onOutcome?.(outcome);
      if (outcome.kind === 'unknown-device') {
        this.path = undefined; // held until registered() names the path again
        return;
      }
      if (outcome.kind === 'unreachable') {
        failures++;
        await this.pause(backoffDelay(failures, this.o.backoff ?? { baseMs: 1000, maxMs: 60_000 }, () => this.o.runtime.random()));
        continue;
      }
      failures = 0;
      if (outcome.kind !== 'dropped') this.delivered++;
      this.queue.shift();
      this.settle();
    }
  }

  /** Sleep `ms`, cut short by a new registration (the server is back). */
  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const t = this.o.runtime.setTimer(ms, resolve);
      this.wake = () => {
        this.o.runtime.clearTimer(t);
        resolve();
      };
    });
    this.wake = undefined;
  }

  private async send(path: string, q: Queued): Promise<ReportOutcome> {
    const rseq = q.rseq!;
    let res;
    try {
      res = await this.o.request(postCbor(path, reportBody(rseq, q.report)), { signal: this.o.signal });
    } catch (e) {
      if (isCoapfwError(e, 'ABORTED')) throw e;
      return { kind: 'unreachable', error: e instanceof CoapfwError ? e.code : String(e) };
    }
    if (res.code >> 5 === 2) return { kind: 'accepted', rseq, report: q.report };
    if (res.code === Code.CONFLICT) return { kind: 'duplicate', rseq, report: q.report };
    if (res.code === Code.NOT_FOUND) return { kind: 'unknown-device' };
    if (res.code >> 5 === 5) {
      const maxAge = getOption(res, OptionNumber.MAX_AGE);
      return { kind: 'unreachable', error: `${res.code >> 5}.${String(res.code & 31).padStart(2, '0')}${maxAge ? ` (Max-Age ${decodeUint(maxAge)})` : ''}` };
    }
    return { kind: 'dropped', rseq, report: q.report, code: res.code };
  }
}

function isProgressOf(r: AgentReport, seq: number | undefined): boolean {
  return r.state === 'downloading' && r.seq === seq;
}
