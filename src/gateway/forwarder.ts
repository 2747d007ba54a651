/**
 * Forwarding the report queue upstream, oldest first, one at a time (so the
 * upstream sees each device's reports in the order the device sent them).
 *
 * Each item is POSTed as a CON; the answer decides:
 * - 2.xx: delivered. 4.09 on a report: the upstream has it already (a repeat
 *   after a crash between forward and dequeue), delivered too.
 * - 4.04 on a report: the upstream does not know the device (its database
 *   was reset, or the registration was lost): the device's last registration
 *   is sent again once, then the report.
 * - Any other 4.xx: rejected for good (counted, logged); the queue moves on.
 * - A timeout, an unreachable upstream, 5.xx: the uplink is down; the item
 *   stays, and the forwarder tries again after a back-off with jitter
 *   (1 s doubling to `maxBackoffMs`), or at once when another exchange shows
 *   the uplink is back.
 */
import type { CoapMessage } from '../codec/message.js';
import { Code, codeClass, codeToString, OptionNumber } from '../codec/numbers.js';
import { stringOption, uintOption } from '../codec/options.js';
import type { RequestSpec } from '../core/request.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import { backoffDelay } from '../messaging/retry.js';
import type { QueuedReport, ReportOutcome, ReportQueue } from './report-queue.js';
import { isUplinkFailure } from './upstream.js';

/** Sends one request to the upstream and resolves with its answer. */
export type UpstreamSend = (spec: RequestSpec) => Promise<CoapMessage>;

/** Options of {@link ReportForwarder}. */
export interface ForwarderOptions {
  readonly runtime: Runtime;
  /** Longest back-off between attempts while the uplink is down. Default 30,000 ms. */
  readonly maxBackoffMs?: number;
  /** The registration to send again before a report the upstream answered 4.04. */
  readonly registrationOf?: (device: string) => QueuedReportLike | undefined;
  /** Told about each item that left the queue, and about every failed attempt. */
  readonly onOutcome?: (item: QueuedReport, outcome: ReportOutcome, code: number) => void;
  readonly onAttemptFailed?: (item: QueuedReport, error: unknown) => void;
  /** Told of each answer to a forwarded item (the gateway keeps registration answers). */
  readonly onAnswer?: (item: QueuedReport, response: CoapMessage) => void;
}

/** What a registration needs to be sent again. */
export type QueuedReportLike = Pick<QueuedReport, 'path' | 'contentFormat' | 'body'>;

/** Counters. */
export interface ForwarderStats {
  attempts: number;
  failedAttempts: number;
  reregistrations: number;
}

/** Drains a {@link ReportQueue} upstream. */
export class ReportForwarder {
  readonly stats: ForwarderStats = { attempts: 0, failedAttempts: 0, reregistrations: 0 };
  private running = false;
  private stopped = false;
  private timer: TimerHandle | undefined;
  private failures = 0;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly queue: ReportQueue,
    private readonly send: UpstreamSend,
    private readonly options: ForwarderOptions,
  ) {}

  /** Forward what is waiting now (no-op while a drain runs or the back-off timer is armed, unless `now`). */
  kick(now = false): void {
    if (this.stopped || this.running) return;
    if (this.timer !== undefined) {
      if (!now) return;
      this.options.runtime.clearTimer(this.timer);
      this.timer = undefined;
    }
    this.running = true;
    this.idle = this.drain().finally(() => (this.running = false));
  }

  /** Resolves when the current drain (if any) has finished. */
  whenIdle(): Promise<void> {
    return this.idle;
  }

  /** Stop forwarding (the queue stays as it is). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.options.runtime.clearTimer(this.timer);
    this.timer = undefined;
    await this.idle;
  }

  private async drain(): Promise<void> {
    for (let item = this.queue.oldest(); item !== undefined && !this.stopped; item = this.queue.oldest()) {
      try {
        const result = await this.forward(item).catch((e: unknown) => {
          // Anything but the network or a 5.xx is this item's fault: it would fail forever and hold up the rest.
          if (isUplinkFailure(e) || isCoapfwError(e, 'RESPONSE_CODE')) throw e;
          this.options.onAttemptFailed?.(item, e);
          return { outcome: 'rejected' as const, code: 0 };
        });
        this.failures = 0;
        await this.queue.complete(item.seq, result.outcome);
        this.options.onOutcome?.(item, result.outcome, result.code);
      } catch (e) {
        // The uplink failed, or writing the outcome did: the item stays and goes again later
        // (a repeat that reached the upstream is answered 4.09 and counted as delivered).
        this.stats.failedAttempts++;
        this.options.onAttemptFailed?.(item, e);
        this.retryLater();
        return;
      }
    }
  }

  /** Forward one item; throws when the uplink failed (the item stays queued). */
  private async forward(item: QueuedReport): Promise<{ outcome: ReportOutcome; code: number }> {
    let res = await this.post(item);
    if (res.code === Code.NOT_FOUND && item.kind === 'report') {
      const reg = this.options.registrationOf?.(item.device);
      if (reg !== undefined) {
        this.stats.reregistrations++;
        const again = await this.post(reg);
        if (codeClass(again.code) === 5) throw unavailable(again);
        res = await this.post(item);
      }
    }
    if (codeClass(res.code) === 5) throw unavailable(res);
    this.options.onAnswer?.(item, res);
    if (codeClass(res.code) === 2) return { outcome: 'delivered', code: res.code };
    if (res.code === Code.CONFLICT && item.kind === 'report') return { outcome: 'replay', code: res.code };
    return { outcome: 'rejected', code: res.code };
  }

  private post(item: QueuedReportLike): Promise<CoapMessage> {
    this.stats.attempts++;
    const options = item.path.map((s) => stringOption(OptionNumber.URI_PATH, s));
    if (item.contentFormat !== undefined) options.push(uintOption(OptionNumber.CONTENT_FORMAT, item.contentFormat));
    return this.send({ code: Code.POST, options, payload: item.body, confirmable: true });
  }

  private retryLater(): void {
    this.failures++;
    const delay = Math.max(250, backoffDelay(this.failures, { baseMs: 1000, maxMs: this.options.maxBackoffMs ?? 30_000 }, () => this.options.runtime.random()));
    this.timer = this.options.runtime.setTimer(delay, () => {
      this.timer = undefined;
      this.kick();
    });
  }
}

function unavailable(res: CoapMessage): CoapfwError {
  return new CoapfwError('RESPONSE_CODE', `upstream answered ${codeToString(res.code)}`, { responseCode: res.code });
}
