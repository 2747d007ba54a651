/** The rollout engine behind the update service's Targeting seam. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClassTargeting, type Targeting } from '../../src/service/modes.js';
import { RolloutEngine } from '../../src/service/rollout-engine.js';
import { rolloutTargeting } from '../../src/service/rollout-targeting.js';
import type { Store } from '../../src/service/store.js';
import { CLASS, registration, release } from './fixtures.js';
import { SqliteHarness, TestClock } from './harness.js';

describe('rollout targeting', () => {
  let h: SqliteHarness;
  let store: Store;
  let clock: TestClock;
  let engine: RolloutEngine;
  let targeting: Targeting;
  beforeEach(async () => {
    h = new SqliteHarness();
    clock = new TestClock();
    store = await h.open(await h.fresh(), { clock: clock.now });
    engine = new RolloutEngine({ store, clock: clock.now });
    targeting = rolloutTargeting(store, engine, new ClassTargeting(store, clock.now, () => 0));
    for (let i = 0; i < 40; i++) await store.registerDevice(registration(`d${String(i).padStart(2, '0')}`, { mode: 'server' }));
  });
  afterEach(() => h.cleanup());

  it('a published release starts a rollout in the waves its urgency sets; only the canary is told', async () => {
    const r2 = await store.publishRelease(release(2, { urgency: 'critical' }));
    await targeting.released(r2);
    const [rollout] = await store.listRollouts({ classId: CLASS });
    expect(rollout).toMatchObject({ sequence: 2, state: 'running', createdBy: 'oem' });
    expect(rollout!.waves.map((w) => w.size)).toEqual([{ percent: 5 }, { percent: 100 }]);
    expect((await store.listRolloutTargets(rollout!.id)).map((t) => t.deviceId)).toEqual(['d00', 'd01']); // 5 % of 40
    expect(await store.openCommand('d00')).toMatchObject({ sequence: 2, kind: 'update', rolloutId: rollout!.id });
    expect(await store.openCommand('d02')).toBeUndefined();
    // A device of a later wave re-registering gets nothing yet; a canary that lost its command gets it again.
    await targeting.registered((await store.getDevice('d02'))!);
    expect(await store.openCommand('d02')).toBeUndefined();
    await store.stepCommand((await store.openCommand('d01'))!.id, { type: 'cancel' });
    await store.moveRolloutTargets(rollout!.id, { deviceId: 'd01' }, ['notified'], 'pending');
    await targeting.registered((await store.getDevice('d01'))!);
    expect(await store.openCommand('d01')).toMatchObject({ sequence: 2, rolloutId: rollout!.id });
  });

  it('a newer release supersedes the active rollout; an aborted one tells nobody; without a rollout, as before', async () => {
    const r2 = await store.publishRelease(release(2));
    await targeting.released(r2);
    const r3 = await store.publishRelease(release(3));
    await targeting.released(r3);
    const rollouts = await store.listRollouts({ classId: CLASS });
    expect(rollouts.map((r) => [r.sequence, r.state])).toEqual([
      [3, 'running'],
      [2, 'aborted'],
    ]);
    expect((await store.openCommand('d00'))!.sequence).toBe(3);
    await engine.abort(rollouts[0]!.id, 'op');
    await targeting.registered((await store.getDevice('d30'))!);
    expect(await store.openCommand('d30')).toBeUndefined();
    // A release nobody rolled out (autoRollout off): every device of the class, at once.
    const manual = rolloutTargeting(store, engine, new ClassTargeting(store, clock.now, () => 0), { autoRollout: false });
    const r4 = await store.publishRelease(release(4, { urgency: 'critical' }));
    await manual.released(r4);
    expect(await store.listRollouts({ classId: CLASS, state: 'running' })).toEqual([]);
    await manual.registered((await store.getDevice('d30'))!);
    expect((await store.openCommand('d30'))!.sequence).toBe(4);
  });
});
