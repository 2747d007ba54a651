/**
 * One rollout step carried out on the store (the orders of the writes are
 * in rollout-engine.ts): every write is compare-and-set, so a CONFLICT means
 * another server running an engine on the same database did it first.
 */
import { CoapfwError, isCoapfwError } from '../errors.js';
import { publish } from '../diagnostics.js';
import type { Rollout } from './fleet.js';
import type { Device, Release } from './model.js';
import type { RolloutDispatcher } from './rollout-dispatch.js';
import type { RolloutStep } from './rollout-plan.js';
import type { RolloutTarget } from './rollout-targets-sql.js';
import type { Store } from './store.js';

/** Commands a hold cancels; a triggered one was told to its device. */
const HOLD_STATES = new Set(['pending', 'scheduled']);

/** Run a compare-and-set write; losing the race to another server is not an error. */
export async function cas(write: () => Promise<unknown>): Promise<void> {
  try {
    await write();
  } catch (e) {
    if (!isCoapfwError(e, 'CONFLICT')) throw e;
  }
}

/** The writes of rollout steps on one store. */
export class RolloutSteps {
  constructor(
    private readonly store: Store,
    /** Targets added or offered per rollout per call. */
    private readonly batch: number,
    private readonly dispatch: RolloutDispatcher,
  ) {}

  /** Carry out one step. A CONFLICT means another server did it first: the caller reloads. */
  async apply(r: Rollout, step: Exclude<RolloutStep, { type: 'none' }>): Promise<void> {
    switch (step.type) {
      case 'start-wave':
        await this.store.updateWave(r.id, step.wave, 'pending', 'running');
        break;
      case 'fill-wave': {
        const ids = await this.store.rolloutCandidates(r.id, Math.min(step.count, this.batch));
        await this.store.addRolloutTargets(r.id, step.wave, ids);
        break;
      }
      case 'wave-succeeded':
        await this.store.updateWave(r.id, step.wave, 'running', 'succeeded');
        break;
      case 'advance':
        await this.store.updateRollout(r.id, 'running', { currentWave: step.next });
        break;
      case 'complete':
        await this.store.updateRollout(r.id, 'running', { state: 'completed' });
        break;
      case 'wave-failed': {
        const paused = await this.store.updateRollout(r.id, 'running', { state: 'paused', pauseReason: step.reason });
        await cas(() => this.store.updateWave(r.id, step.wave, 'running', 'failed'));
        await this.hold(paused);
        break;
      }
      case 'restart-wave':
        await this.store.moveRolloutTargets(r.id, { wave: step.wave }, ['failed', 'reverted'], 'pending');
        await this.store.updateWave(r.id, step.wave, 'failed', 'running');
        break;
      default: {
        const never: never = step;
        return never;
      }
    }
    publish('rollout', () => ({ rolloutId: r.id, ...step }));
  }

  /** Offer the rollout's release to pending targets of its started waves, a batch at a time. */
  async offerPending(r: Rollout): Promise<void> {
    let release: Release | undefined;
    for (const wave of r.waves) {
      if (wave.state === 'pending' || wave.index > r.currentWave) continue;
      const targets = await this.store.listRolloutTargets(r.id, { wave: wave.index, state: 'pending', limit: this.batch });
      for (const t of targets) {
        release ??= await this.store.getRelease(r.classId, r.sequence);
        if (release === undefined) throw new CoapfwError('NOT_FOUND', `rollout ${r.id}: release ${r.sequence} of class ${r.classId} is gone`);
        await this.offer(r, release, t);
      }
    }
  }

  private async offer(r: Rollout, release: Release, t: RolloutTarget): Promise<void> {
    const device: Device | undefined = await this.store.getDevice(t.deviceId);
    if (device === undefined) return; // deleted since: its target row went with it
    if (device.installedSeq >= r.sequence) {
      // Updated by other means (another rollout, by hand): it counts as confirmed.
      await this.store.moveRolloutTargets(r.id, { deviceId: t.deviceId }, ['pending'], 'confirmed');
      return;
    }
    await this.dispatch.offer(device, release, r);
    await this.store.moveRolloutTargets(r.id, { deviceId: t.deviceId }, ['pending'], 'notified');
  }

  /** Cancel the rollout's commands not yet triggered; their targets go back to pending. Idempotent. */
  async hold(r: Rollout): Promise<void> {
    for (const c of await this.store.rolloutOpenCommands(r.id)) {
      if (!HOLD_STATES.has(c.state)) continue; // triggered: the device was told, it cannot be untold
      await cas(() => this.store.stepCommand(c.id, { type: 'cancel' }, r.state === 'aborted' ? 'rollout aborted' : 'rollout paused'));
      await this.store.moveRolloutTargets(r.id, { deviceId: c.deviceId }, ['notified'], 'pending');
    }
  }
}
