/**
 * The rollout engine behind the update service's {@link Targeting} seam
 * (modes.ts): a published release is rolled out in waves (those its urgency
 * sets, unless the operator starts one by hand), instead of going to every
 * device of the class at once.
 *
 * - released: a rollout of the release to its class starts; an active
 *   rollout of an older release of the class is aborted first (the newer
 *   release supersedes it: one active rollout per class and group).
 * - registered: a device covered by an active rollout of its class's newest
 *   release gets its offer when its wave has it (the engine's step offers
 *   pending targets again, so a device that lost its command gets a new
 *   one), and waits otherwise; a device whose newest release went out without
 *   a rollout, or whose rollout completed, is handled as before (`inner`,
 *   ClassTargeting); one whose rollout was aborted gets nothing.
 */
import { isCoapfwError } from '../errors.js';
import type { Targeting } from './modes.js';
import type { Device, Release } from './model.js';
import type { RolloutEngine } from './rollout-engine.js';
import type { Store } from './store.js';

/** Options of {@link rolloutTargeting}. */
export interface RolloutTargetingOptions {
  /** Start a rollout for every published release. Default true; false leaves releases to the operator's rollouts. */
  readonly autoRollout?: boolean;
}

/** Targeting by rollouts, falling back to `inner` for releases no rollout covers. */
export function rolloutTargeting(store: Store, engine: RolloutEngine, inner: Targeting, options: RolloutTargetingOptions = {}): Targeting {
  const auto = options.autoRollout ?? true;
  return {
    async released(release: Release): Promise<void> {
      if (!auto) return;
      for (const r of await store.listRollouts({ classId: release.classId })) {
        if ((r.state === 'running' || r.state === 'paused') && r.group === undefined && r.sequence < release.sequence) {
          await ignoreConflict(engine.abort(r.id, `release ${release.sequence}`));
        }
      }
      // CONFLICT: another server started it, or an operator's rollout of the class is active: it stands.
      await ignoreConflict(engine.create({ classId: release.classId, sequence: release.sequence, createdBy: release.publisher }));
    },
    async registered(device: Device): Promise<void> {
      const latest = await store.latestRelease(device.classId);
      if (latest === undefined) return;
      const covering = (await store.deviceRollouts(device.id)).filter((r) => r.sequence === latest.sequence);
      if (covering.length === 0 || covering.some((r) => r.rolloutState === 'completed')) return inner.registered(device);
      const active = covering.find((r) => r.rolloutState === 'running' || r.rolloutState === 'paused');
      if (active !== undefined) await engine.step(active.rolloutId);
    },
  };
}

async function ignoreConflict(p: Promise<unknown>): Promise<void> {
  try {
    await p;
  } catch (e) {
    if (!isCoapfwError(e, 'CONFLICT')) throw e;
  }
}
