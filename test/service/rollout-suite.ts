/**
 * The rollout engine on a real store under a test clock: waves advance, a
 * failing canary pauses, resume retries, abort holds, the time limit, and a
 * restart (a new store and engine on the same database) in the middle of each
 * step, left where a killed server would leave it. The same tests run on
 * SQLite and PostgreSQL.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WaveSpec } from '../../src/service/fleet.js';
import { RolloutEngine } from '../../src/service/rollout-engine.js';
import type { Store } from '../../src/service/store.js';
import { CLASS, expectCode, registration, release } from './fixtures.js';
import { TestClock, type Harness } from './harness.js';

const wave = (over: Partial<WaveSpec> = {}): WaveSpec => ({ size: { count: 2 }, successPermille: 1000, failurePermille: 0, timeLimitS: 3600, ...over });
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(2, '0')}`);

/** The rollout engine's tests on one backend. */
export function rolloutSuite(make: () => Harness): void {
  describe('rollout engine', () => {
    let h: Harness;
    let clock: TestClock;
    let store: Store;
    let url: string;
    let engine: RolloutEngine;
    const rseq = new Map<string, number>();
    const report = async (id: string, state: 'downloading' | 'confirmed' | 'failed' | 'reverted', over: object = {}): Promise<void> => {
      const n = (rseq.get(id) ?? 0) + 1;
      rseq.set(id, n);
      const extra = state === 'confirmed' ? { installedSeq: 2 } : state === 'failed' || state === 'reverted' ? { detail: 'boom' } : {};
      await store.recordReport(id, { reportSeq: n, state, sequence: 2, ...extra, ...over });
    };
    const targets = async (rolloutId: number, wave?: number) =>
      (await store.listRolloutTargets(rolloutId, wave === undefined ? {} : { wave })).map((t) => [t.deviceId, t.wave, t.state]);
    /** A server restart: a new store and engine on the same database. */
    const restart = async (): Promise<void> => {
      store = await h.open(url, { clock: clock.now });
      engine = new RolloutEngine({ store, clock: clock.now });
    };

    beforeEach(async () => {
      h = make();
      clock = new TestClock();
      url = await h.fresh();
      store = await h.open(url, { clock: clock.now });
      engine = new RolloutEngine({ store, clock: clock.now });
      rseq.clear();
      await store.publishRelease(release(1));
      await store.publishRelease(release(2));
      // Ten devices on sequence 1: mostly server-initiated, dev-01 negotiated, dev-09 client-initiated.
      for (const [i, id] of ids(10).entries()) {
        await store.registerDevice(registration(id, { mode: i === 1 ? 'negotiated' : i === 9 ? 'client' : 'server' }));
      }
    });
    afterEach(() => h.cleanup());

    it('waves advance on their success threshold; timeliness from the server clock', async () => {
      const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave(), wave({ size: { percent: 50 } }), wave({ size: { percent: 100 } })], createdBy: 'op' });
      expect(r.waves.map((w) => w.state)).toEqual(['running', 'pending', 'pending']);
      expect(await targets(r.id)).toEqual([
        ['dev-00', 0, 'notified'],
        ['dev-01', 0, 'notified'],
      ]);
      expect(await store.openCommand('dev-00')).toMatchObject({ kind: 'update', sequence: 2, rolloutId: r.id });
      expect(await store.openCommand('dev-01')).toMatchObject({ kind: 'announce', sequence: 2, rolloutId: r.id });
      expect(await store.openCommand('dev-02')).toBeUndefined();
      clock.advance(60_000);
      await report('dev-00', 'confirmed');
      await engine.tick();
      expect((await store.getRollout(r.id))!.currentWave).toBe(0); // 1 of 2: success needs both
      clock.advance(60_000);
      await report('dev-01', 'confirmed');
      await engine.tick();
      const second = (await store.getRollout(r.id))!;
      expect([second.currentWave, second.waves.map((w) => w.state)]).toEqual([1, ['succeeded', 'running', 'pending']]);
      expect(second.waves[1]!.startedAt).toBe(clock.t);
      // 50 % of 10, cumulative: three more.
      expect(await targets(r.id, 1)).toEqual([
        ['dev-02', 1, 'notified'],
        ['dev-03', 1, 'notified'],
        ['dev-04', 1, 'notified'],
      ]);
      for (const id of ['dev-02', 'dev-03', 'dev-04']) {
        clock.advance(60_000);
        await report(id, 'confirmed');
      }
      await engine.tick();
      expect((await targets(r.id, 2)).map((t) => t[0])).toEqual(['dev-05', 'dev-06', 'dev-07', 'dev-08', 'dev-09']);
      // dev-09 is client-initiated: no command, the release became visible to it instead.
      expect(await store.openCommand('dev-09')).toBeUndefined();
      expect((await engine.visibleRelease('dev-09'))!.sequence).toBe(2);
      for (const id of ['dev-05', 'dev-06', 'dev-07', 'dev-08', 'dev-09']) {
        clock.advance(60_000);
        await report(id, 'confirmed');
      }
      await engine.tick();
      const done = await engine.progress(r.id);
      expect(done.rollout.state).toBe('completed');
      expect(done.waves.map((w) => [w.targeted, w.byState.confirmed])).toEqual([
        [2, 2],
        [3, 3],
        [5, 5],
      ]);
      // Confirmations at 1, 2, ... 10 minutes: the 5th, 9th and 10th.
      expect(done.timeliness).toEqual({ targeted: 10, confirmed: 10, p50Ms: 300_000, p90Ms: 540_000, p100Ms: 600_000 });
      expect(done.curve[done.curve.length - 1]).toEqual([600_000, 10]);
      expect(done.remaining).toBe(0);
    });

    it('a failing canary pauses the rollout and holds back devices not yet told; resume retries them', async () => {
      const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave(), wave({ size: { percent: 100 } })], createdBy: 'op' });
      const dev0 = (await store.openCommand('dev-00'))!;
      await report('dev-01', 'failed');
      await engine.tick();
      const paused = (await store.getRollout(r.id))!;
      expect(paused.state).toBe('paused');
      expect(paused.pauseReason).toBe('wave 0: 1 of 2 devices failed or reverted (limit 0 %)');
      expect(paused.waves.map((w) => w.state)).toEqual(['failed', 'pending']);
      expect((await store.getCommand(dev0.id))!.state).toBe('cancelled');
      expect(await targets(r.id)).toEqual([
        ['dev-00', 0, 'pending'],
        ['dev-01', 0, 'failed'],
      ]);
      clock.advance(7200_000); // far past the wave's time limit, while paused
      await engine.tick();
      expect((await store.getRollout(r.id))!.waves[1]!.state).toBe('pending'); // paused: nothing widens
      const resumed = await engine.resume(r.id, 'op');
      expect([resumed.state, resumed.pauseReason, resumed.waves[0]!.state, resumed.waves[0]!.startedAt]).toEqual(['running', undefined, 'running', clock.t]);
      expect(await targets(r.id)).toEqual([
        ['dev-00', 0, 'notified'],
        ['dev-01', 0, 'notified'],
      ]);
      expect((await store.openCommand('dev-00'))!.id).not.toBe(dev0.id);
      await report('dev-00', 'confirmed');
      await report('dev-01', 'confirmed');
      await engine.tick();
      expect((await store.getRollout(r.id))!.currentWave).toBe(1);
      await expectCode(engine.resume(r.id, 'op'), 'CONFLICT');
    });

    it('a revert counts like a failure; the failure limit is a rate', async () => {
      const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave({ size: { count: 4 }, failurePermille: 250, successPermille: 750 })], createdBy: 'op' });
      await report('dev-00', 'reverted');
      await engine.tick();
      expect((await store.getRollout(r.id))!.state).toBe('running'); // 1 of 4 is not above 25 %
      await report('dev-02', 'failed');
      await engine.tick();
      expect((await store.getRollout(r.id))!.pauseReason).toBe('wave 0: 2 of 4 devices failed or reverted (limit 25 %)');
    });

    it('the time limit pauses a wave that is too slow', async () => {
      const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave({ timeLimitS: 600 }), wave()], createdBy: 'op' });
      await report('dev-00', 'confirmed');
      clock.advance(599_999);
      await engine.tick();
      expect((await store.getRollout(r.id))!.state).toBe('running');
      clock.advance(1);
      await engine.tick();
      const paused = (await store.getRollout(r.id))!;
      expect([paused.state, paused.pauseReason]).toEqual(['paused', 'wave 0: 1 of 2 devices confirmed within 600 s (needed 100 %)']);
    });

    it('operator pause stops widening; resume goes on; abort ends it and holds everyone back', async () => {
      const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave(), wave({ size: { percent: 100 } })], createdBy: 'op' });
      const p = await engine.pause(r.id, 'alice');
      expect([p.state, p.pauseReason]).toEqual(['paused', 'paused by alice']);
      await report('dev-00', 'confirmed');
      await report('dev-01', 'confirmed');
      await engine.tick();
      expect((await store.getRollout(r.id))!.currentWave).toBe(0);
      await expectCode(engine.pause(r.id, 'alice'), 'CONFLICT');
      await engine.resume(r.id, 'alice');
      expect(await targets(r.id, 1)).toHaveLength(8);
      const open = (await store.openCommand('dev-05'))!;
      const a = await engine.abort(r.id, 'bob');
      expect(a.state).toBe('aborted');
      expect((await store.getCommand(open.id))!.state).toBe('cancelled');
      expect((await engine.visibleRelease('dev-09'))!.sequence).toBe(1); // never through an aborted rollout
      expect((await engine.visibleRelease('dev-00'))!.sequence).toBe(2); // it runs 2 already
      await expectCode(engine.abort(r.id, 'bob'), 'CONFLICT');
      await expectCode(engine.pause(r.id, 'bob'), 'CONFLICT');
    });

    it('a device already told of the release outside the rollout keeps the command it answered; an unanswered one is taken over', async () => {
      // The release's own targeting got there first (a device registering before the rollout was created).
      const answered = await store.createCommand({ deviceId: 'dev-01', sequence: 2, kind: 'announce' });
      await store.stepCommand(answered.id, { type: 'answer', deferS: 30 });
      const unanswered = await store.createCommand({ deviceId: 'dev-00', sequence: 2, kind: 'update' });
      const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave(), wave({ size: { percent: 100 } })], createdBy: 'op' });
      expect(await targets(r.id, 0)).toEqual([
        ['dev-00', 0, 'notified'],
        ['dev-01', 0, 'notified'],
      ]);
      // The deferral stands: same command, still scheduled, its answer kept.
      expect(await store.openCommand('dev-01')).toMatchObject({ id: answered.id, state: 'scheduled', deferS: 30 });
      // Not yet answered: replaced by the rollout's, which its pause and abort then hold.
      expect(await store.openCommand('dev-00')).toMatchObject({ kind: 'update', sequence: 2, rolloutId: r.id });
      expect((await store.getCommand(unanswered.id))!.state).toBe('superseded');
      // A restart offers again: still the same commands.
      await restart();
      await engine.tick();
      expect((await store.openCommand('dev-01'))!.id).toBe(answered.id);
    });

    it('urgency sets the default waves', async () => {
      await store.publishRelease(release(3, { urgency: 'critical' }));
      const r = await engine.create({ classId: CLASS, sequence: 3, createdBy: 'op' });
      expect(r.waves.map((w) => [w.size, w.timeLimitS])).toEqual([
        [{ percent: 5 }, 1800],
        [{ percent: 100 }, 21600],
      ]);
      expect(await targets(r.id)).toEqual([['dev-00', 0, 'notified']]); // 5 % of 10, rounded up
    });

    describe('a restart in the middle of each step', () => {
      it('wave started, no targets yet', async () => {
        const r = await store.createRollout({ classId: CLASS, sequence: 2, waves: [wave()], createdBy: 'op' });
        await store.updateWave(r.id, 0, 'pending', 'running');
        await restart();
        await engine.tick();
        expect(await targets(r.id)).toEqual([
          ['dev-00', 0, 'notified'],
          ['dev-01', 0, 'notified'],
        ]);
      });

      it('targets added, not yet told; one of them told', async () => {
        const r = await store.createRollout({ classId: CLASS, sequence: 2, waves: [wave({ size: { count: 3 } })], createdBy: 'op' });
        await store.updateWave(r.id, 0, 'pending', 'running');
        await store.addRolloutTargets(r.id, 0, ['dev-00', 'dev-02', 'dev-03']);
        const told = await store.createCommand({ deviceId: 'dev-02', sequence: 2, kind: 'update', rolloutId: r.id });
        await restart();
        await engine.tick();
        expect((await targets(r.id)).map((t) => t[2])).toEqual(['notified', 'notified', 'notified']);
        expect((await store.openCommand('dev-02'))!.id).toBe(told.id); // not sent twice
        expect(await store.openCommand('dev-00')).toBeDefined();
      });

      it('paused on failure, wave not yet failed, commands not yet held', async () => {
        const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave(), wave()], createdBy: 'op' });
        await report('dev-00', 'failed');
        await store.updateRollout(r.id, 'running', { state: 'paused', pauseReason: 'wave 0 failing' });
        await restart();
        await engine.tick();
        expect((await store.openCommand('dev-01'))).toBeUndefined();
        expect(await targets(r.id)).toEqual([
          ['dev-00', 0, 'failed'],
          ['dev-01', 0, 'pending'],
        ]);
        const resumed = await engine.resume(r.id, 'op');
        expect(resumed.waves[0]!.state).toBe('running');
        expect((await targets(r.id)).map((t) => t[2])).toEqual(['notified', 'notified']);
      });

      it('resumed, wave still failed', async () => {
        const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave()], createdBy: 'op' });
        await report('dev-00', 'failed');
        await engine.tick();
        await store.updateRollout(r.id, 'paused', { state: 'running', pauseReason: null });
        await restart();
        clock.advance(5000);
        await engine.tick();
        const after = (await store.getRollout(r.id))!;
        expect([after.state, after.waves[0]!.state, after.waves[0]!.startedAt]).toEqual(['running', 'running', clock.t]);
        expect((await targets(r.id)).map((t) => t[2])).toEqual(['notified', 'notified']);
      });

      it('wave succeeded, next not yet started; last wave succeeded, not yet completed', async () => {
        const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave(), wave({ size: { count: 1 } })], createdBy: 'op' });
        await report('dev-00', 'confirmed');
        await report('dev-01', 'confirmed');
        await store.updateWave(r.id, 0, 'running', 'succeeded');
        await restart();
        await engine.tick();
        expect(await targets(r.id, 1)).toEqual([['dev-02', 1, 'notified']]);
        await report('dev-02', 'confirmed');
        await store.updateWave(r.id, 1, 'running', 'succeeded');
        await restart();
        await engine.tick();
        expect((await store.getRollout(r.id))!.state).toBe('completed');
      });

      it('aborted, commands not yet held', async () => {
        const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave()], createdBy: 'op' });
        await store.updateRollout(r.id, 'running', { state: 'aborted' });
        await restart();
        await engine.tick();
        expect(await store.openCommand('dev-00')).toBeUndefined();
        expect(await store.openCommand('dev-01')).toBeUndefined();
      });
    });

    it('two servers ticking one database take each step once', async () => {
      const other = new RolloutEngine({ store: await h.open(url, { clock: clock.now }), clock: clock.now });
      const r = await engine.create({ classId: CLASS, sequence: 2, waves: [wave(), wave({ size: { percent: 100 } })], createdBy: 'op' });
      await report('dev-00', 'confirmed');
      await report('dev-01', 'confirmed');
      await Promise.all([engine.tick(), other.tick(), engine.tick(), other.tick()]);
      const after = (await store.getRollout(r.id))!;
      expect([after.currentWave, after.waves.map((w) => w.state)]).toEqual([1, ['succeeded', 'running']]);
      expect(await targets(r.id, 1)).toHaveLength(8);
      for (const id of ids(10).slice(2, 9)) expect((await store.openCommand(id))?.rolloutId, id).toBe(r.id);
    });
  });
}
