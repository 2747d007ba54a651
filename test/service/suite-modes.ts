/**
 * The server's side of the three update modes under a test clock: urgency
 * decides when a server-initiated device is told (critical now, normal
 * spread over the window, configuration when idle), negotiated deferrals
 * become scheduled commands, and of two schedulers on one database each
 * command is triggered once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ClassTargeting, CommandScheduler, notBeforeFor } from '../../src/service/modes.js';
import type { Store } from '../../src/service/store.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { registration, release } from './fixtures.js';
import { TestClock, type Harness } from './harness.js';

export function modesSuite(make: () => Harness): void {
  describe('update modes (server side)', () => {
    let h: Harness;
    let clock: TestClock;
    let store: Store;
    let url: string;
    let rt: FakeRuntime;
    beforeEach(async () => {
      h = make();
      clock = new TestClock();
      url = await h.fresh();
      store = await h.open(url, { clock: clock.now });
      rt = new FakeRuntime(11);
    });
    afterEach(() => h.cleanup());

    const fleet = async (n: number, mode: 'client' | 'server' | 'negotiated', prefix = mode): Promise<void> => {
      for (let i = 0; i < n; i++) await store.registerDevice(registration(`${prefix}-${i}`, { mode }));
    };

    it('a release targets every device of its class in server and negotiated mode, never client mode, below its sequence', async () => {
      await fleet(3, 'server');
      await fleet(2, 'negotiated');
      await fleet(2, 'client');
      await store.registerDevice(registration('already', { mode: 'server', installedSeq: 5 }));
      await store.registerDevice(registration('other-class', { mode: 'server', classId: '0102' }));
      const targeting = new ClassTargeting(store, clock.now, () => rt.random(), { normalWindowS: 600 });
      const r = await store.publishRelease(release(5, { urgency: 'critical' }));
      await targeting.released(r);
      const open = async (id: string) => store.openCommand(id);
      for (let i = 0; i < 3; i++) expect(await open(`server-${i}`)).toMatchObject({ kind: 'update', state: 'scheduled', sequence: 5, notBefore: clock.t });
      for (let i = 0; i < 2; i++) expect(await open(`negotiated-${i}`)).toMatchObject({ kind: 'announce', state: 'pending', notBefore: undefined });
      for (const id of ['client-0', 'client-1', 'already', 'other-class']) expect(await open(id)).toBeUndefined();
      // Targeting the same release again keeps the commands (idempotent), it does not supersede them.
      const before = (await open('negotiated-0'))!.id;
      await targeting.released(r);
      expect((await open('negotiated-0'))!.id).toBe(before);
    });

    it('normal urgency spreads notBefore over the window with jitter; critical and configuration are now', async () => {
      const random = (() => {
        let i = 0;
        const values = [0, 0.25, 0.5, 0.999];
        return () => values[i++ % values.length]!;
      })();
      expect([0, 1, 2, 3].map(() => notBeforeFor('normal', 1000, 60_000, random))).toEqual([1000, 16_000, 31_000, 60_940]);
      expect(notBeforeFor('critical', 1000, 60_000, random)).toBe(1000);
      expect(notBeforeFor('configuration', 1000, 60_000, random)).toBe(1000);
      await fleet(50, 'server');
      const targeting = new ClassTargeting(store, clock.now, () => rt.random(), { normalWindowS: 3600 });
      await targeting.released(await store.publishRelease(release(2)));
      const times = (await Promise.all(Array.from({ length: 50 }, (_, i) => store.openCommand(`server-${i}`)))).map((c) => c!.notBefore! - clock.t);
      expect(Math.min(...times)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...times)).toBeLessThan(3600_000);
      expect(new Set(times).size).toBeGreaterThan(40); // spread, not a burst
      const scheduler = new CommandScheduler(store, rt, clock.now);
      expect(await scheduler.tick()).toBe(times.filter((t) => t === 0).length);
      clock.advance(1800_000);
      const firstHalf = times.filter((t) => t <= 1800_000).length;
      await scheduler.tick();
      expect(scheduler.triggered).toBe(firstHalf);
      clock.advance(1800_000);
      await scheduler.tick();
      expect(scheduler.triggered).toBe(50);
    });

    it('configuration updates wait until the device is idle', async () => {
      await fleet(1, 'server');
      const targeting = new ClassTargeting(store, clock.now, () => rt.random());
      await targeting.released(await store.publishRelease(release(2, { urgency: 'configuration' })));
      await store.recordReport('server-0', { reportSeq: 1, state: 'downloading', sequence: 1, progress: { done: 10, total: 100 } });
      const scheduler = new CommandScheduler(store, rt, clock.now, { idleRetryS: 30 });
      expect(await scheduler.tick()).toBe(0);
      const postponed = (await store.openCommand('server-0'))!;
      expect(postponed).toMatchObject({ state: 'scheduled', notBefore: clock.t + 30_000 });
      clock.advance(30_000);
      await store.recordReport('server-0', { reportSeq: 2, state: 'idle' });
      expect(await scheduler.tick()).toBe(1);
      expect((await store.openCommand('server-0'))!.state).toBe('triggered');
    });

    it('a negotiated "defer 3600 s" is triggered once the server clock passes it, and by one of two schedulers only', async () => {
      await fleet(1, 'negotiated');
      const targeting = new ClassTargeting(store, clock.now, () => rt.random());
      await targeting.released(await store.publishRelease(release(2)));
      const cmd = (await store.openCommand('negotiated-0'))!;
      await store.stepCommand(cmd.id, { type: 'answer', deferS: 3600 });
      const other = await h.open(url, { clock: clock.now }); // a second server on the same database
      const a = new CommandScheduler(store, rt, clock.now);
      const b = new CommandScheduler(other, rt, clock.now);
      clock.advance(3599_000);
      expect((await a.tick()) + (await b.tick())).toBe(0);
      clock.advance(1000);
      const [na, nb] = await Promise.all([a.tick(), b.tick()]);
      expect(na + nb).toBe(1);
      expect((await store.getCommand(cmd.id))!.state).toBe('triggered');
    });

    it('a device registering again gets the command it lacks (once), and in client mode loses its open one', async () => {
      const targeting = new ClassTargeting(store, clock.now, () => rt.random());
      const r = await store.publishRelease(release(3, { urgency: 'critical' }));
      await targeting.registered(await store.registerDevice(registration('late', { mode: 'server' })));
      const first = (await store.openCommand('late'))!;
      expect(first).toMatchObject({ sequence: 3, kind: 'update' });
      await targeting.registered(await store.registerDevice(registration('late', { mode: 'server' })));
      expect((await store.openCommand('late'))!.id).toBe(first.id); // a reboot does not reset it
      await store.recordReport('late', { reportSeq: 1, state: 'failed', sequence: 3, detail: 'flash error' });
      await targeting.registered(await store.registerDevice(registration('late', { mode: 'server' })));
      expect(await store.openCommand('late')).toBeUndefined(); // a failed update is not retried by a reboot
      await targeting.registered(await store.registerDevice(registration('switch', { mode: 'negotiated' })));
      expect((await store.openCommand('switch'))!.kind).toBe('announce');
      await targeting.registered(await store.registerDevice(registration('switch', { mode: 'server' })));
      expect((await store.openCommand('switch'))!.kind).toBe('update');
      await targeting.registered(await store.registerDevice(registration('switch', { mode: 'client' })));
      expect(await store.openCommand('switch')).toBeUndefined();
      expect((await store.listCommands('switch')).map((c) => c.state)).toEqual(['cancelled', 'superseded']);
      void r;
    });

    it('the scheduler ticks on its runtime timers, never overlapping, and stops', async () => {
      await fleet(2, 'server');
      await new ClassTargeting(store, clock.now, () => rt.random()).released(await store.publishRelease(release(2, { urgency: 'critical' })));
      const scheduler = new CommandScheduler(store, rt, clock.now, { tickMs: 1000 });
      scheduler.start();
      rt.advance(1000);
      for (let i = 0; i < 50 && scheduler.triggered < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(scheduler.triggered).toBe(2);
      await scheduler.stop();
      rt.advance(10_000);
      expect(scheduler.triggered).toBe(2);
    });
  });
}
