/**
 * The rollout engine: carries out rollout-plan.ts's decisions on the store.
 *
 * Every change is a compare-and-set write (Store.updateRollout/updateWave,
 * conditional target moves), so several servers running an engine on one
 * database cooperate: the one whose write lands did the step, the others get
 * CONFLICT, reload and find it done. Nothing lives only in memory: a server
 * killed between two writes of a step leaves rows from which the next tick
 * (here or on another server) finishes the step. The orders are chosen so
 * that every intermediate state reads as the step in progress:
 * - start a wave: wave pending -> running, then targets added, then offered
 *   (a running wave short of targets is filled; pending targets are offered);
 * - pause (automatic or operator): rollout -> paused, then the wave -> failed
 *   (automatic), then open commands not yet triggered are cancelled and their
 *   targets go back to pending (done again on every tick while paused);
 * - resume: rollout -> running, then the wave -> failed if it was running,
 *   failed and reverted targets -> pending (they are retried), then the wave
 *   failed -> running, which restarts its time limit: a running rollout on a
 *   failed wave is a resume in progress;
 * - abort: rollout -> aborted, then held like a pause.
 */
import { CoapfwError } from '../errors.js';
import { publish } from '../diagnostics.js';
import type { Rollout, WaveSpec } from './fleet.js';
import type { Release, WallClock } from './model.js';
import { commandDispatcher, type RolloutDispatcher } from './rollout-dispatch.js';
import { confirmationCurve, defaultWaves, nextStep, timeliness, type Timeliness } from './rollout-plan.js';
import { cas, RolloutSteps } from './rollout-steps.js';
import type { Store } from './store.js';
import { checkInt } from './validate.js';

/** Timers the engine runs on (a Runtime's, or Node's). */
export interface EngineTimers {
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
}

/** Options of {@link RolloutEngine}. */
export interface RolloutEngineOptions {
  readonly store: Store;
  /** The server's wall clock (the store's). Default Date.now. */
  readonly clock?: WallClock;
  /** Timers for {@link RolloutEngine.start}. Default Node's (unref'd). */
  readonly timers?: EngineTimers;
  /** Check every active rollout this often. Default 5000 ms. */
  readonly intervalMs?: number;
  /** After a change event, check again this soon. Default 200 ms. */
  readonly reactMs?: number;
  /** Targets added or offered per rollout per tick. Default 500. */
  readonly batch?: number;
  /** Tells devices of a wave. Default {@link commandDispatcher}. */
  readonly dispatch?: RolloutDispatcher;
  /** A failed tick (database gone, a bug). Default: a process warning. */
  readonly onError?: (e: unknown) => void;
}

/** What an operator asks for: the waves default from the release's urgency. */
export interface RolloutRequest {
  readonly classId: string;
  readonly sequence: number;
  readonly group?: string;
  readonly waves?: readonly WaveSpec[];
  readonly createdBy: string;
}

/** A rollout with its per-wave counts, timeliness and confirmation curve (the fleet page, the JSON API). */
export interface RolloutProgress {
  readonly rollout: Rollout;
  readonly waves: ReadonlyArray<{ readonly index: number; readonly targeted: number; readonly byState: Readonly<Record<string, number>> }>;
  /** Devices the rollout may still target. */
  readonly remaining: number;
  readonly timeliness: Timeliness;
  /** [ms since the rollout was created, devices confirmed]. */
  readonly curve: ReadonlyArray<readonly [number, number]>;
}

const MAX_STEPS = 64;

/** Drives rollouts: {@link RolloutEngine.tick} on a timer, and operator actions. */
export class RolloutEngine {
  private readonly store: Store;
  private readonly clock: WallClock;
  private readonly steps: RolloutSteps;
  private readonly running = new Map<number, Promise<Rollout | undefined>>();
  private timer: unknown;
  private soon: unknown;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: RolloutEngineOptions) {
    this.store = options.store;
    this.clock = options.clock ?? Date.now;
    const batch = checkInt(options.batch ?? 500, 'rollout batch', 1, 10_000);
    this.steps = new RolloutSteps(this.store, batch, options.dispatch ?? commandDispatcher(this.store));
  }

  /** Create a rollout (waves from the release's urgency unless given) and take its first steps. */
  async create(request: RolloutRequest): Promise<Rollout> {
    const release = await this.store.getRelease(request.classId, request.sequence);
    if (release === undefined) throw new CoapfwError('NOT_FOUND', `rollout: no release ${request.sequence} for class ${request.classId}`);
    const rollout = await this.store.createRollout({ ...request, waves: request.waves ?? defaultWaves(release.urgency) });
    publish('rollout', () => ({ rolloutId: rollout.id, step: 'created', by: request.createdBy }));
    return (await this.step(rollout.id)) ?? rollout;
  }

  /** Operator: stop widening and hold back devices not yet told. CONFLICT unless running. */
  async pause(id: number, by: string, reason = `paused by ${by}`): Promise<Rollout> {
    const r = await this.store.updateRollout(id, 'running', { state: 'paused', pauseReason: reason });
    publish('rollout', () => ({ rolloutId: id, step: 'paused', reason, by }));
    await this.steps.hold(r);
    return (await this.store.getRollout(id))!;
  }

  /** Operator: go on; failed devices of the current wave are retried and its time limit restarts. CONFLICT unless paused. */
  async resume(id: number, by: string): Promise<Rollout> {
    await this.store.updateRollout(id, 'paused', { state: 'running', pauseReason: null });
    publish('rollout', () => ({ rolloutId: id, step: 'resumed', by }));
    const current = await this.mustGet(id);
    const wave = current.waves[current.currentWave]!;
    if (wave.state === 'running') await cas(() => this.store.updateWave(id, wave.index, 'running', 'failed'));
    return (await this.step(id)) ?? current;
  }

  /** Operator: end the rollout for good; devices not yet told are held back. CONFLICT when it has ended. */
  async abort(id: number, by: string): Promise<Rollout> {
    const r = await this.mustGet(id);
    if (r.state !== 'running' && r.state !== 'paused') throw new CoapfwError('CONFLICT', `rollout: ${id} is ${r.state}, not active`);
    const aborted = await this.store.updateRollout(id, r.state, { state: 'aborted' });
    publish('rollout', () => ({ rolloutId: id, step: 'aborted', by }));
    await this.steps.hold(aborted);
    return aborted;
  }

  /**
   * Take every step due on every active rollout (running ones advance,
   * paused ones stay held), and finish holding the newest aborted ones (an
   * abort cut short by a crash).
   */
  async tick(): Promise<void> {
    const [running, paused, aborted] = await Promise.all([
      this.store.listRollouts({ state: 'running' }),
      this.store.listRollouts({ state: 'paused' }),
      this.store.listRollouts({ state: 'aborted', limit: 10 }),
    ]);
    for (const r of [...running, ...paused]) await this.step(r.id);
    for (const r of aborted) await this.steps.hold(r);
  }

  /**
   * Take the steps due on one rollout now, until none is (bounded). Calls
   * for one rollout in this process run one at a time. Returns the rollout
   * as it is afterwards.
   */
  step(id: number): Promise<Rollout | undefined> {
    const before = this.running.get(id) ?? Promise.resolve(undefined);
    const run = before.catch(() => undefined).then(() => this.stepNow(id));
    this.running.set(id, run);
    void run.finally(() => {
      if (this.running.get(id) === run) this.running.delete(id);
    }).catch(() => undefined); // the caller of step() gets the error; this is only clean-up
    return run;
  }

  /** Counts, timeliness and the confirmation curve of a rollout. */
  async progress(id: number): Promise<RolloutProgress> {
    const rollout = await this.mustGet(id);
    const [counts, remaining, confirmations] = await Promise.all([this.store.rolloutCounts(id), this.store.countRolloutCandidates(id), this.store.rolloutConfirmations(id)]);
    const targeted = counts.reduce((n, c) => n + c.targeted, 0);
    return {
      rollout,
      waves: counts.map((c) => ({ index: c.wave, targeted: c.targeted, byState: c.byState })),
      remaining,
      timeliness: timeliness(rollout.createdAt, confirmations, targeted),
      curve: confirmationCurve(rollout.createdAt, confirmations),
    };
  }

  /**
   * The newest release a device may see (a client-initiated device's
   * manifest): a release under a rollout that covers the device is visible
   * to it once the rollout completed or told it (its target is past
   * `pending`), and never through an aborted rollout; a release no rollout
   * covers is visible to every device of the class.
   */
  async visibleRelease(deviceId: string): Promise<Release | undefined> {
    const device = await this.store.getDevice(deviceId);
    if (device === undefined) return undefined;
    const rollouts = await this.store.deviceRollouts(deviceId);
    for (const release of await this.store.listReleases({ classId: device.classId, limit: 50 })) {
      const covering = rollouts.filter((r) => r.sequence === release.sequence);
      const open =
        covering.length === 0 ||
        covering.some((r) => r.rolloutState === 'completed' || (r.rolloutState !== 'aborted' && r.targetState !== undefined && r.targetState !== 'pending')) ||
        release.sequence <= device.installedSeq;
      if (open) return release;
    }
    return undefined;
  }

  /** Tick every `intervalMs`, and soon after any rollout or device change. Idempotent. */
  start(): void {
    if (this.timer !== undefined) return;
    const timers = this.options.timers ?? nodeTimers;
    const interval = this.options.intervalMs ?? 5000;
    const loop = (): void => {
      this.tick()
        .catch((e: unknown) => this.fail(e))
        .finally(() => {
          if (this.timer !== undefined) this.timer = timers.setTimer(interval, loop);
        });
    };
    this.timer = timers.setTimer(interval, loop);
    this.unsubscribe = this.store.subscribe((change) => {
      if (change.kind !== 'rollout' && change.kind !== 'device' && change.kind !== 'resync') return;
      if (this.soon !== undefined) return;
      this.soon = timers.setTimer(this.options.reactMs ?? 200, () => {
        this.soon = undefined;
        this.tick().catch((e: unknown) => this.fail(e));
      });
    });
  }

  /** Stop the timers and wait for steps in progress. */
  async stop(): Promise<void> {
    const timers = this.options.timers ?? nodeTimers;
    if (this.timer !== undefined) timers.clearTimer(this.timer);
    if (this.soon !== undefined) timers.clearTimer(this.soon);
    this.timer = this.soon = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    await Promise.allSettled([...this.running.values()]);
  }

  private async stepNow(id: number): Promise<Rollout | undefined> {
    for (let i = 0; i < MAX_STEPS; i++) {
      const rollout = await this.store.getRollout(id);
      if (rollout === undefined) return undefined;
      if (rollout.state === 'paused') {
        await this.steps.hold(rollout);
        return rollout;
      }
      const [counts, candidates] = await Promise.all([this.store.rolloutCounts(id), this.store.countRolloutCandidates(id)]);
      const step = nextStep({ rollout, counts, candidates, now: this.clock() });
      // Devices of started waves are told before anything else happens, unless the wave is about to pause.
      if (rollout.state === 'running' && step.type !== 'wave-failed') await this.steps.offerPending(rollout);
      if (step.type === 'none') return rollout;
      await cas(() => this.steps.apply(rollout, step));
    }
    return this.store.getRollout(id);
  }

  private async mustGet(id: number): Promise<Rollout> {
    const r = await this.store.getRollout(id);
    if (r === undefined) throw new CoapfwError('NOT_FOUND', `rollout: no rollout ${id}`);
    return r;
  }

  private fail(e: unknown): void {
    publish('error', () => ({ where: 'rollout engine', error: e }));
    if (this.options.onError) this.options.onError(e);
    else process.emitWarning(e instanceof Error ? e : new Error(String(e)), 'CoapfwRolloutError');
  }
}

const nodeTimers: EngineTimers = {
  setTimer: (ms, fn) => setTimeout(fn, ms).unref(),
  clearTimer: (h) => clearTimeout(h as NodeJS.Timeout),
};
