/**
 * One update as the agent runs it: the existing power-safe updater
 * (`updateDevice`: power on, `runUpdate`, reboot into the test image and its
 * self-test) with its events turned into the service's reports: downloading
 * (rate-limited: one per `progressStepPercent` of the image), downloaded,
 * installing, installed, then confirmed or reverted after the reboot, or
 * failed with the reason. A failure that only means the server is out of
 * reach is not reported (a `failed` report closes the command): it comes
 * back as `retry`, and the journal resumes the download next time.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { formatCoapUri, parseCoapUri } from '../codec/uri.js';
import { powerOn, type PowerOnResult } from './device.js';
import { updateDevice, type DeviceUpdateOptions } from './device-update.js';
import type { UpdateTarget, UpdateOutcome } from './agent-machine.js';
import type { AgentReport } from './agent-wire.js';
import type { UpdateStatus } from './report.js';
import type { UpdateEvent } from './states.js';

/** Error codes of a failed update that mean "the server is out of reach": retried, not reported. */
export const UNREACHABLE_CODES: ReadonlySet<string> = new Set(['TIMEOUT', 'RESET', 'IO_ERROR', 'TRANSPORT_CLOSED', 'UNREACHABLE', 'LIMIT_EXCEEDED', 'DTLS_HANDSHAKE_FAILED', 'DTLS_NO_SESSION']);

/** What the agent hands each update run. */
export interface AgentUpdateContext {
  /** The updater's options but the manifest and the hooks the agent sets itself. */
  readonly update: Omit<DeviceUpdateOptions, 'manifestUri' | 'onEvent' | 'onStatus' | 'statusPath' | 'reboot'>;
  /** The server's URI: the target's path is resolved against it. */
  readonly server: string;
  readonly progressStepPercent: number;
  readonly report: (r: AgentReport) => void;
  readonly onEvent?: (e: UpdateEvent) => void;
}

/** How a run ended, with what the agent shows. */
export interface AgentUpdateResult {
  readonly outcome: UpdateOutcome;
  readonly status: UpdateStatus;
  /** The device as it runs now, when a power-on happened after the update. */
  readonly after: PowerOnResult | undefined;
}

/** The server URI with the path of `target` (a content address on the same server). */
export function targetUri(server: string, path: string): string {
  const base = parseCoapUri(server);
  return formatCoapUri({ ...base, path: path.split('/').slice(1).map(decodeURIComponent), query: [] });
}

/** Turns the updater's events into rate-limited reports. */
class ProgressReports {
  private seq: number;
  private total = 0;
  private resumed = 0;
  private last: AgentReport['state'] | undefined;
  private bucket = -1;
  private readonly seen = new Map<number, number>();

  constructor(target: UpdateTarget, private readonly ctx: AgentUpdateContext) {
    this.seq = target.seq;
  }

  get sequence(): number {
    return this.seq;
  }

  onEvent(e: UpdateEvent): void {
    if (e.type === 'envelope') {
      this.seq = e.sequence;
      this.total = e.imageSize;
    } else if (e.type === 'resume' && e.phase === 'fetching') {
      this.resumed = e.fromBlock * e.blockSize;
    } else if (e.type === 'state' && e.state === 'download') {
      this.progress(this.resumed);
    } else if (e.type === 'block') {
      this.seen.set(e.image, e.imageSize);
      let before = 0;
      for (const [i, size] of this.seen) if (i < e.image) before += size;
      this.progress(before + e.offset + e.bytes);
    } else if (e.type === 'state' && e.state === 'verify-image') {
      this.transition({ state: 'downloaded', seq: this.seq, done: this.total, total: this.total });
    } else if (e.type === 'state' && e.state === 'install') {
      this.transition({ state: 'installing', seq: this.seq });
    } else if (e.type === 'status' && e.status.result === 'installed') {
      this.transition({ state: 'installed', seq: this.seq });
    }
  }

  /** At most one downloading report per step of the image, and one whenever the state changes to it. */
  private progress(done: number): void {
    const total = Math.max(this.total, 1);
    const bucket = Math.floor((Math.min(done, total) * 100) / total / this.ctx.progressStepPercent);
    if (this.last === 'downloading' && bucket <= this.bucket) return;
    this.bucket = bucket;
    this.transition({ state: 'downloading', seq: this.seq, done: Math.min(done, this.total), total: this.total });
  }

  private transition(r: AgentReport): void {
    if (r.state !== 'downloading' && r.state === this.last) return; // a retried step does not repeat its transition
    this.last = r.state;
    this.ctx.report(r);
  }
}

function reason(s: UpdateStatus): string {
  return `${s.error ?? 'UNKNOWN'}: ${s.message ?? s.result}`;
}

/** Run one update of `target`; throws only what `updateDevice` throws (`POWER_CUT`, `ABORTED`, misuse). */
export async function runAgentUpdate(ctx: AgentUpdateContext, target: UpdateTarget): Promise<AgentUpdateResult> {
  const reports = new ProgressReports(target, ctx);
  const r = await updateDevice({
    ...ctx.update,
    manifestUri: targetUri(ctx.server, target.manifest),
    reboot: true,
    onEvent: (e) => {
      reports.onEvent(e);
      ctx.onEvent?.(e);
    },
  });
  const { status } = r;
  const seq = reports.sequence;
  const installed = r.after?.installedSequence ?? status.installedSequence ?? 0;
  const done = (gaveUp: boolean, after = r.after): AgentUpdateResult => ({ outcome: { kind: 'done', installed: after?.installedSequence ?? installed, gaveUp }, status, after });
  switch (status.result) {
    case 'installed':
      return afterReboot(ctx, r.after, seq, status);
    case 'up-to-date':
      // The device already runs it (a kill after the confirm, before its report landed).
      ctx.report({ state: 'confirmed', seq, iseq: installed, ...digestOf(r.after) });
      return done(false);
    case 'rejected':
      ctx.report({ state: 'failed', seq, detail: reason(status) });
      return done(true);
    case 'failed':
      if (status.error !== undefined && UNREACHABLE_CODES.has(status.error)) return { outcome: { kind: 'retry', error: status.error }, status, after: r.after };
      ctx.report({ state: 'failed', seq, detail: reason(status) });
      return done(true);
    default: {
      const never: never = status.result;
      return never;
    }
  }
}

function digestOf(p: PowerOnResult | undefined): { digest?: string } {
  return p === undefined ? {} : { digest: bytesToHex(p.boot.image.digest) };
}

/** After the reboot into the test image: confirmed, or (self-test failed) reverted at the next boot. */
async function afterReboot(ctx: AgentUpdateContext, after: PowerOnResult | undefined, seq: number, status: UpdateStatus): Promise<AgentUpdateResult> {
  if (after === undefined) {
    // updateDevice returns no power-on only when the reboot failed: it said so in status.
    ctx.report({ state: 'failed', seq, detail: reason(status) });
    return { outcome: { kind: 'done', installed: status.installedSequence ?? 0, gaveUp: true }, status, after };
  }
  if (after.outcome === 'confirmed') {
    ctx.report({ state: 'confirmed', seq, iseq: after.installedSequence, ...digestOf(after) });
    return { outcome: { kind: 'done', installed: after.installedSequence, gaveUp: false }, status, after };
  }
  // Unconfirmed: the device resets and the bootloader swaps the old image back (MCUboot's rule).
  const back = after.outcome === 'unconfirmed' ? await powerOn(ctx.update.flash, ctx.update.layout) : after;
  ctx.report({ state: 'reverted', seq, detail: 'the new image did not pass its self-test: reverted', iseq: back.installedSequence, ...digestOf(back) });
  return { outcome: { kind: 'done', installed: back.installedSequence, gaveUp: true }, status, after: back };
}
