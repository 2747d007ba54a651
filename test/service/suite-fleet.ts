/** Commands (server-initiated and negotiated modes) and rollouts: the same tests on every backend. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/service/store.js';
import { CLASS, expectCode, outcomes, registration, release } from './fixtures.js';
import { TestClock, type Harness } from './harness.js';

const wave = (over: object = {}) => ({ size: { count: 2 }, successPermille: 900, failurePermille: 200, timeLimitS: 3600, ...over });

/** Commands, deferrals on the server clock, rollouts and waves. */
export function fleetSuite(make: () => Harness): void {
  describe('commands and rollouts', () => {
    let h: Harness;
    let clock: TestClock;
    let store: Store;
    let url: string;
    beforeEach(async () => {
      h = make();
      clock = new TestClock();
      url = await h.fresh();
      store = await h.open(url, { clock: clock.now });
      await store.publishRelease(release(2));
      for (const id of ['a', 'b', 'c', 'd']) await store.registerDevice(registration(id, { mode: id === 'a' ? 'negotiated' : 'server', group: id < 'c' ? 'lab' : 'field' }));
    });
    afterEach(() => h.cleanup());

    it('negotiated: a deferral becomes server time, due only once it has passed', async () => {
      const c = await store.createCommand({ deviceId: 'a', sequence: 2, kind: 'announce' });
      expect(c).toMatchObject({ kind: 'announce', state: 'pending', notBefore: undefined, classId: CLASS, createdAt: clock.t });
      expect(await store.dueCommands()).toEqual([]);
      clock.advance(10_000);
      const answered = await store.stepCommand(c.id, { type: 'answer', deferS: 3600 });
      expect(answered).toMatchObject({ state: 'scheduled', deferS: 3600, answeredAt: clock.t, notBefore: clock.t + 3_600_000 });
      clock.advance(3_599_999);
      expect(await store.dueCommands()).toEqual([]);
      clock.advance(1);
      expect((await store.dueCommands()).map((d) => d.id)).toEqual([c.id]);
      const triggered = await store.stepCommand(c.id, { type: 'trigger' });
      expect(triggered.state).toBe('triggered');
      expect(await store.dueCommands()).toEqual([]);
      await expectCode(store.stepCommand(c.id, { type: 'answer', deferS: 10 }), 'CONFLICT');
      await expectCode(store.stepCommand(c.id, { type: 'answer', deferS: -1 }), 'INVALID_ARGUMENT');
    });

    it('server-initiated: exactly one of two servers triggers a due command', async () => {
      const other = await h.open(url, { clock: clock.now });
      const c = await store.createCommand({ deviceId: 'b', sequence: 2, kind: 'update', notBefore: clock.t + 1000 });
      expect(c).toMatchObject({ state: 'scheduled', notBefore: clock.t + 1000 });
      await expectCode(store.stepCommand(c.id, { type: 'answer', deferS: 5 }), 'CONFLICT');
      clock.advance(1000);
      const results = await Promise.allSettled([store.stepCommand(c.id, { type: 'trigger' }), other.stepCommand(c.id, { type: 'trigger' })]);
      expect(outcomes(results)).toEqual({ ok: 1, codes: ['CONFLICT'] });
      expect((await other.openCommand('b'))!.state).toBe('triggered');
    });

    it('a new command supersedes the open one; a confirmed report closes it', async () => {
      const first = await store.createCommand({ deviceId: 'b', sequence: 2, kind: 'update' });
      await store.publishRelease(release(3));
      const second = await store.createCommand({ deviceId: 'b', sequence: 3, kind: 'update' });
      expect((await store.getCommand(first.id))!.state).toBe('superseded');
      expect((await store.openCommand('b'))!.id).toBe(second.id);
      await store.recordReport('b', { reportSeq: 1, state: 'downloading', sequence: 3 });
      expect((await store.openCommand('b'))!.state).toBe('scheduled');
      await store.recordReport('b', { reportSeq: 2, state: 'confirmed', sequence: 3, installedSeq: 3 });
      expect(await store.openCommand('b')).toBeUndefined();
      expect(await store.getCommand(second.id)).toMatchObject({ state: 'done', finishedAt: clock.t });
      await expectCode(store.createCommand({ deviceId: 'b', sequence: 9, kind: 'update' }), 'NOT_FOUND');
      await expectCode(store.createCommand({ deviceId: 'ghost', sequence: 2, kind: 'update' }), 'NOT_FOUND');
      await expectCode(store.createCommand({ deviceId: 'a', sequence: 2, kind: 'announce', notBefore: 5 }), 'INVALID_ARGUMENT');
      await expectCode(store.stepCommand(first.id, { type: 'cancel' }), 'CONFLICT');
    });

    it('two servers opening a command for one device at once: one wins, one gets CONFLICT', async () => {
      const other = await h.open(url, { clock: clock.now });
      const results = await Promise.allSettled([
        store.createCommand({ deviceId: 'c', sequence: 2, kind: 'update' }),
        other.createCommand({ deviceId: 'c', sequence: 2, kind: 'update' }),
      ]);
      const { ok, codes } = outcomes(results);
      // SQLite serialises the two (the second supersedes the first); PostgreSQL may run them together (one CONFLICT).
      expect(ok + codes.length).toBe(2);
      expect(codes.every((c) => c === 'CONFLICT')).toBe(true);
      expect(await store.openCommand('c')).toBeDefined();
    });

    it('rollouts: waves, targets following reports, counts, one active per class and group', async () => {
      const r = await store.createRollout({ classId: CLASS, sequence: 2, waves: [wave(), wave({ size: { percent: 100 } })], createdBy: 'op' });
      expect(r).toMatchObject({ state: 'running', currentWave: 0, group: undefined, createdBy: 'op', createdAt: clock.t });
      expect(r.waves.map((w) => [w.index, w.state, w.size])).toEqual([
        [0, 'pending', { count: 2 }],
        [1, 'pending', { percent: 100 }],
      ]);
      await expectCode(store.createRollout({ classId: CLASS, sequence: 2, waves: [wave()], createdBy: 'op' }), 'CONFLICT');
      const lab = await store.createRollout({ classId: CLASS, sequence: 2, group: 'lab', waves: [wave()], createdBy: 'op' });
      expect(await store.addRolloutTargets(r.id, 0, ['a', 'b'])).toBe(2);
      expect(await store.addRolloutTargets(r.id, 1, ['b', 'c', 'd'])).toBe(2); // b stays in wave 0
      await expectCode(store.addRolloutTargets(lab.id, 0, ['a', 'c']), 'INVALID_ARGUMENT'); // c is in group field
      expect((await store.rolloutCounts(lab.id))[0]!.targeted).toBe(0); // nothing of the failed call stayed
      await store.setTargetState(r.id, 'a', 'notified');
      await store.recordReport('a', { reportSeq: 1, state: 'downloading', sequence: 2 });
      await store.recordReport('b', { reportSeq: 1, state: 'confirmed', sequence: 2 });
      await store.recordReport('c', { reportSeq: 1, state: 'failed', sequence: 2, detail: 'flash error' });
      await store.recordReport('d', { reportSeq: 1, state: 'confirmed', sequence: 1 }); // another release: no change
      const counts = await store.rolloutCounts(r.id);
      expect(counts.map((c) => [c.wave, c.targeted, c.byState.updating, c.byState.confirmed, c.byState.failed, c.byState.pending])).toEqual([
        [0, 2, 1, 1, 0, 0],
        [1, 2, 0, 0, 1, 1],
      ]);
      await expectCode(store.setTargetState(r.id, 'ghost', 'notified'), 'NOT_FOUND');
    });

    it('rollout and wave changes are compare-and-set; finished rollouts stay finished', async () => {
      const r = await store.createRollout({ classId: CLASS, sequence: 2, waves: [wave(), wave()], createdBy: 'op' });
      clock.advance(500);
      const started = await store.updateWave(r.id, 0, 'pending', 'running');
      expect(started.waves[0]).toMatchObject({ state: 'running', startedAt: clock.t });
      await expectCode(store.updateWave(r.id, 0, 'pending', 'running'), 'CONFLICT');
      await expectCode(store.updateWave(r.id, 1, 'pending', 'succeeded'), 'CONFLICT');
      const paused = await store.updateRollout(r.id, 'running', { state: 'paused', pauseReason: 'canary failing' });
      expect(paused).toMatchObject({ state: 'paused', pauseReason: 'canary failing', updatedAt: clock.t });
      await expectCode(store.updateRollout(r.id, 'running', { state: 'paused' }), 'CONFLICT');
      const resumed = await store.updateRollout(r.id, 'paused', { state: 'running', pauseReason: null, currentWave: 1 });
      expect(resumed).toMatchObject({ state: 'running', pauseReason: undefined, currentWave: 1 });
      await expectCode(store.updateRollout(r.id, 'running', { currentWave: 2 }), 'INVALID_ARGUMENT');
      await store.updateRollout(r.id, 'running', { state: 'aborted' });
      await expectCode(store.updateRollout(r.id, 'aborted', { state: 'running' }), 'CONFLICT');
      // Aborted is not active: a new rollout of the class may start.
      const next = await store.createRollout({ classId: CLASS, sequence: 2, waves: [wave()], createdBy: 'op' });
      expect((await store.listRollouts({ classId: CLASS })).map((x) => [x.id, x.state])).toEqual([
        [next.id, 'running'],
        [r.id, 'aborted'],
      ]);
      expect((await store.listRollouts({ state: 'aborted' })).map((x) => x.id)).toEqual([r.id]);
    });

    it('refuses bad rollouts', async () => {
      const base = { classId: CLASS, sequence: 2, createdBy: 'op' };
      await expectCode(store.createRollout({ ...base, waves: [] }), 'INVALID_ARGUMENT');
      await expectCode(store.createRollout({ ...base, waves: [wave({ size: { percent: 101 } })] }), 'INVALID_ARGUMENT');
      await expectCode(store.createRollout({ ...base, waves: [wave({ size: { count: 1, percent: 5 } })] }), 'INVALID_ARGUMENT');
      await expectCode(store.createRollout({ ...base, waves: [wave({ successPermille: 1001 })] }), 'INVALID_ARGUMENT');
      await expectCode(store.createRollout({ ...base, sequence: 3, waves: [wave()] }), 'NOT_FOUND');
      expect(await store.listRollouts()).toEqual([]);
    });
  });
}
