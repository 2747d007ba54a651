/**
 * How the rollout engine tells a device of its wave that it may update: the
 * default follows the device's update mode (issue 10):
 * - server-initiated: a command `update` (the device is told to update now);
 * - negotiated: a command `announce` (the device answers now or defer N s);
 * - client-initiated: nothing to send: the release becomes visible to it
 *   (RolloutEngine.visibleRelease, which the manifest resource asks).
 * A server with its own scheduling (spreading `update` over a window by
 * urgency) passes its own {@link RolloutDispatcher}.
 */
import { isCoapfwError } from '../errors.js';
import type { DeviceCommand, Rollout } from './fleet.js';
import type { Device, Release } from './model.js';
import { kindFor } from './modes.js';
import type { Store } from './store.js';

/** Tells one device of a wave about the rollout's release. Must be idempotent: a restart may offer again. */
export interface RolloutDispatcher {
  offer(device: Device, release: Release, rollout: Rollout): Promise<void>;
}

/** The default dispatcher: a command per device for the server-initiated and negotiated modes. */
export function commandDispatcher(store: Store): RolloutDispatcher {
  return {
    async offer(device, release, rollout) {
      if (device.mode === 'client') return;
      const kind = kindFor(device);
      const open = await store.openCommand(device.id);
      // Offered before a restart (or by another server): the open command stands.
      if (open !== undefined && open.sequence === release.sequence && open.rolloutId === rollout.id) return;
      // Told of this release outside the rollout (the release's own targeting, before the rollout existed) and
      // already answered (a deferral) or started: the device's answer stands. A new command would supersede it,
      // and the device would be asked again, its deferral forgotten, or its update cut short.
      if (open !== undefined && open.sequence === release.sequence && open.kind === kind && answeredOrStarted(open)) return;
      try {
        await store.createCommand({ deviceId: device.id, sequence: release.sequence, kind, rolloutId: rollout.id });
      } catch (e) {
        // Another server opened a command for this device at the same moment: one is enough.
        if (!isCoapfwError(e, 'CONFLICT')) throw e;
      }
    },
  };
}

/** An announce the device answered (scheduled: its deferral running), or any command it was told to carry out. */
function answeredOrStarted(c: DeviceCommand): boolean {
  return c.state === 'triggered' || (c.kind === 'announce' && c.state === 'scheduled');
}
