/**
 * The rollout engine's decisions, as pure functions of a rollout, its
 * per-wave counts and the server's clock: which step comes next, how large a
 * wave is, what the urgency of a release sets by default, and how timely the
 * rollout was. No I/O here: rollout-engine.ts carries the steps out as
 * compare-and-set writes, so several servers (or one restarted) arrive at the
 * same decisions from the same database rows.
 *
 * Rules:
 * - A wave's size is a count of devices (this wave's own), or a percentage
 *   of the rollout's population, cumulative: `25 %` means "a quarter of the
 *   devices, the earlier waves included", so the last wave is usually 100 %.
 *   The population is what the rollout targeted plus what it still may
 *   target (devices of the class, and group, on an older sequence).
 * - A running wave succeeds when confirmed targets reach its success
 *   threshold (per mille of its targets); the next wave then starts, and the
 *   rollout completes after the last.
 * - It fails, and the rollout pauses, when failed plus reverted targets
 *   exceed its failure limit, or when its time limit passes first.
 */
import type { Rollout, WaveCounts, WaveSpec } from './fleet.js';
import type { Urgency } from './model.js';

/** The next thing to do for a rollout. */
export type RolloutStep =
  | { readonly type: 'none' }
  /** Start wave `wave` (pending -> running), then fill it. */
  | { readonly type: 'start-wave'; readonly wave: number }
  /** The running wave has fewer targets than its size and devices remain: add `count`, notify them. */
  | { readonly type: 'fill-wave'; readonly wave: number; readonly count: number }
  /** Running wave reached its success threshold. */
  | { readonly type: 'wave-succeeded'; readonly wave: number }
  /** A succeeded wave that was not followed yet: move to `next`. */
  | { readonly type: 'advance'; readonly next: number }
  /** The last wave succeeded. */
  | { readonly type: 'complete' }
  /** Failure or revert limit passed, or time is up: pause with `reason`. */
  | { readonly type: 'wave-failed'; readonly wave: number; readonly reason: string }
  /** The rollout runs on a wave that a pause left failed: the resume that was under way (retry its devices, restart the wave). */
  | { readonly type: 'restart-wave'; readonly wave: number };

/** What {@link nextStep} needs besides the rollout. */
export interface StepInput {
  readonly rollout: Rollout;
  readonly counts: readonly WaveCounts[];
  /** Devices the rollout may still target. */
  readonly candidates: number;
  /** Server wall clock, ms. */
  readonly now: number;
}

/** Devices wave `index` should hold, given the population and the targets of the waves before it. */
export function waveSize(spec: WaveSpec, population: number, earlier: number): number {
  if ('count' in spec.size) return spec.size.count;
  // Cumulative share, rounded up so that a 1 % canary of 50 devices is one device, not none.
  return Math.max(0, Math.ceil((population * spec.size.percent) / 100) - earlier);
}

const bad = (c: WaveCounts): number => c.byState.failed + c.byState.reverted;

/** The next step for a rollout (see the module comment for the rules). */
export function nextStep(input: StepInput): RolloutStep {
  const { rollout, counts, candidates, now } = input;
  if (rollout.state !== 'running') return { type: 'none' };
  const index = rollout.currentWave;
  const wave = rollout.waves[index]!;
  const last = index === rollout.waves.length - 1;
  switch (wave.state) {
    case 'pending':
      return { type: 'start-wave', wave: index };
    case 'succeeded':
      return last ? { type: 'complete' } : { type: 'advance', next: index + 1 };
    case 'failed':
      return { type: 'restart-wave', wave: index };
    case 'running':
      return runningStep(input, index);
    default: {
      const never: never = wave.state;
      return never;
    }
  }
  function runningStep(_: StepInput, i: number): RolloutStep {
    const c = counts[i]!;
    const spec = rollout.waves[i]!;
    const failed = bad(c);
    if (c.targeted > 0 && failed * 1000 > spec.failurePermille * c.targeted) {
      return { type: 'wave-failed', wave: i, reason: `wave ${i}: ${failed} of ${c.targeted} devices failed or reverted (limit ${permille(spec.failurePermille)})` };
    }
    const population = counts.reduce((n, w) => n + w.targeted, 0) + candidates;
    const earlier = counts.slice(0, i).reduce((n, w) => n + w.targeted, 0);
    const missing = Math.min(candidates, waveSize(spec, population, earlier) - c.targeted);
    if (missing > 0) return { type: 'fill-wave', wave: i, count: missing };
    if (c.byState.confirmed * 1000 >= spec.successPermille * c.targeted) return { type: 'wave-succeeded', wave: i };
    if (spec.startedAt !== undefined && now >= spec.startedAt + spec.timeLimitS * 1000) {
      return {
        type: 'wave-failed',
        wave: i,
        reason: `wave ${i}: ${c.byState.confirmed} of ${c.targeted} devices confirmed within ${spec.timeLimitS} s (needed ${permille(spec.successPermille)})`,
      };
    }
    return { type: 'none' };
  }
}

function permille(p: number): string {
  return `${p / 10} %`;
}

/**
 * Waves a release's urgency sets when the operator gives none:
 * - critical (a security fix): a 5 % canary for 30 minutes, then everyone;
 * - normal: a 1 % canary for a day, 10 % for a day, then everyone;
 * - configuration: a 10 % canary for an hour, then everyone.
 */
export function defaultWaves(urgency: Urgency): WaveSpec[] {
  const hour = 3600;
  switch (urgency) {
    case 'critical':
      return [
        { size: { percent: 5 }, successPermille: 800, failurePermille: 100, timeLimitS: hour / 2 },
        { size: { percent: 100 }, successPermille: 950, failurePermille: 100, timeLimitS: 6 * hour },
      ];
    case 'normal':
      return [
        { size: { percent: 1 }, successPermille: 950, failurePermille: 50, timeLimitS: 24 * hour },
        { size: { percent: 10 }, successPermille: 950, failurePermille: 50, timeLimitS: 24 * hour },
        { size: { percent: 100 }, successPermille: 950, failurePermille: 50, timeLimitS: 72 * hour },
      ];
    case 'configuration':
      return [
        { size: { percent: 10 }, successPermille: 900, failurePermille: 100, timeLimitS: hour },
        { size: { percent: 100 }, successPermille: 950, failurePermille: 100, timeLimitS: 12 * hour },
      ];
    default: {
      const never: never = urgency;
      return never;
    }
  }
}

/** How timely a rollout was: ms from its creation until 50, 90 and 100 % of its targets confirmed. */
export interface Timeliness {
  readonly targeted: number;
  readonly confirmed: number;
  readonly p50Ms: number | undefined;
  readonly p90Ms: number | undefined;
  readonly p100Ms: number | undefined;
}

/** Timeliness from the sorted confirmation times (server clock) of a rollout created at `start`. */
export function timeliness(start: number, confirmedAt: readonly number[], targeted: number): Timeliness {
  const at = (share: number): number | undefined => {
    if (targeted === 0) return undefined;
    const k = Math.ceil(targeted * share);
    return confirmedAt.length >= k ? confirmedAt[k - 1]! - start : undefined;
  };
  return { targeted, confirmed: confirmedAt.length, p50Ms: at(0.5), p90Ms: at(0.9), p100Ms: at(1) };
}

/** Confirmed devices over time as at most `maxPoints` [ms since start, count] steps (the fleet page's chart). */
export function confirmationCurve(start: number, confirmedAt: readonly number[], maxPoints = 120): Array<[number, number]> {
  const n = confirmedAt.length;
  if (n === 0) return [];
  const step = Math.max(1, Math.ceil(n / maxPoints));
  const out: Array<[number, number]> = [];
  for (let i = step - 1; i < n; i += step) out.push([confirmedAt[i]! - start, i + 1]);
  if (out[out.length - 1]![1] !== n) out.push([confirmedAt[n - 1]! - start, n]);
  return out;
}
