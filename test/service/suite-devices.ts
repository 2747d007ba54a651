/** Device registry and status history: the same tests on every backend. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/service/store.js';
import { CLASS, DIGEST, expectCode, outcomes, registration, VENDOR } from './fixtures.js';
import { TestClock, type Harness } from './harness.js';

/** Registration, reports, replays, history. */
export function devicesSuite(make: () => Harness): void {
  describe('devices and reports', () => {
    let h: Harness;
    let clock: TestClock;
    let store: Store;
    let url: string;
    beforeEach(async () => {
      h = make();
      clock = new TestClock();
      url = await h.fresh();
      store = await h.open(url, { clock: clock.now });
    });
    afterEach(() => h.cleanup());

    it('registers a device with the server clock, normalising ids, and lists it', async () => {
      const d = await store.registerDevice(
        registration('dev-1', { vendorId: 'FA6B4A53-D5AD-5FDF-BE9D-E663E4D41FFE', runningDigest: DIGEST.toUpperCase(), group: 'lab', identity: 'psk-dev-1', mode: 'negotiated' }),
      );
      expect(d).toMatchObject({ id: 'dev-1', vendorId: VENDOR, classId: CLASS, installedSeq: 1, runningDigest: DIGEST, mode: 'negotiated', group: 'lab', identity: 'psk-dev-1' });
      expect(d).toMatchObject({ state: 'registered', reportSeq: 0, registeredAt: clock.t, lastSeen: clock.t, progress: undefined });
      expect(await store.getDevice('dev-1')).toEqual(d);
      expect(await store.getDeviceByIdentity('psk-dev-1')).toEqual(d);
      expect(await store.getDevice('nope')).toBeUndefined();
      const history = await store.listHistory('dev-1');
      expect(history).toHaveLength(1);
      expect(history[0]).toMatchObject({ transition: 'registered', fromState: undefined, at: clock.t, sequence: 1, reportSeq: undefined });
    });

    it('re-registration updates the record, keeps the report counter and a bound identity', async () => {
      await store.registerDevice(registration('dev-1', { identity: 'id-1' }));
      await store.recordReport('dev-1', { reportSeq: 5, state: 'idle' });
      clock.advance(60_000);
      const d = await store.registerDevice(registration('dev-1', { installedSeq: 4, mode: 'server', group: 'g2' }));
      expect(d).toMatchObject({ installedSeq: 4, mode: 'server', group: 'g2', identity: 'id-1', reportSeq: 5, state: 'idle', lastSeen: clock.t });
      expect(d.registeredAt).toBe(clock.t - 60_000);
      const [latest] = await store.listHistory('dev-1', { limit: 1 });
      expect(latest).toMatchObject({ transition: 'registered', fromState: 'idle', sequence: 4 });
    });

    it('refuses bad registrations with INVALID_ARGUMENT and writes nothing', async () => {
      const bad = [
        registration('has space'),
        registration('x'.repeat(65)),
        registration('d', { vendorId: 'zz' }),
        registration('d', { classId: '' }),
        registration('d', { installedSeq: -1 }),
        registration('d', { installedSeq: 1.5 }),
        registration('d', { installedSeq: 2 ** 53 }),
        registration('d', { mode: 'push' as never }),
        registration('d', { runningDigest: 'abc' }),
        registration('d', { group: '' }),
        registration('d', { identity: 'a\nb' }),
      ];
      for (const r of bad) await expectCode(store.registerDevice(r), 'INVALID_ARGUMENT');
      expect(await store.listDevices()).toEqual([]);
    });

    it('refuses an identity bound to another device (CONFLICT)', async () => {
      await store.registerDevice(registration('dev-1', { identity: 'shared' }));
      await expectCode(store.registerDevice(registration('dev-2', { identity: 'shared' })), 'CONFLICT');
      expect(await store.getDevice('dev-2')).toBeUndefined();
    });

    it('records reports: state, progress, reason, history stamped by the server', async () => {
      await store.registerDevice(registration('dev-1'));
      clock.advance(1000);
      const { device, entry } = await store.recordReport('dev-1', { reportSeq: 1, state: 'downloading', sequence: 2, progress: { done: 1024, total: 5000 } });
      expect(device).toMatchObject({ state: 'downloading', targetSeq: 2, progress: { done: 1024, total: 5000 }, reportSeq: 1, lastSeen: clock.t });
      expect(entry).toMatchObject({ deviceId: 'dev-1', at: clock.t, transition: 'downloading', fromState: 'registered', sequence: 2, reportSeq: 1 });
      clock.advance(1000);
      const failed = await store.recordReport('dev-1', { reportSeq: 2, state: 'failed', sequence: 2, detail: 'image digest mismatch' });
      expect(failed.device).toMatchObject({ state: 'failed', progress: undefined, detail: 'image digest mismatch', targetSeq: 2 });
      clock.advance(1000);
      const confirmed = await store.recordReport('dev-1', { reportSeq: 3, state: 'confirmed', sequence: 2, installedSeq: 2, runningDigest: DIGEST });
      expect(confirmed.device).toMatchObject({ state: 'confirmed', installedSeq: 2, runningDigest: DIGEST, detail: undefined });
      const history = await store.listHistory('dev-1');
      expect(history.map((e) => e.transition)).toEqual(['confirmed', 'failed', 'downloading', 'registered']);
      expect(history.map((e) => e.at)).toEqual([clock.t, clock.t - 1000, clock.t - 2000, clock.t - 3000]);
      const older = await store.listHistory('dev-1', { before: history[1]!.id, limit: 1 });
      expect(older.map((e) => e.transition)).toEqual(['downloading']);
    });

    it('refuses a replayed or older report with REPORT_REPLAY and writes nothing', async () => {
      await store.registerDevice(registration('dev-1'));
      await store.recordReport('dev-1', { reportSeq: 7, state: 'downloading', sequence: 2, progress: { done: 10, total: 100 } });
      const before = await store.getDevice('dev-1');
      const historyBefore = await store.listHistory('dev-1');
      clock.advance(5000);
      await expectCode(store.recordReport('dev-1', { reportSeq: 7, state: 'confirmed', sequence: 2 }), 'REPORT_REPLAY');
      await expectCode(store.recordReport('dev-1', { reportSeq: 3, state: 'failed', detail: 'x' }), 'REPORT_REPLAY');
      expect(await store.getDevice('dev-1')).toEqual(before); // last seen did not move either
      expect(await store.listHistory('dev-1')).toEqual(historyBefore);
      const next = await store.recordReport('dev-1', { reportSeq: 8, state: 'installed', sequence: 2 });
      expect(next.device.reportSeq).toBe(8);
    });

    it('refuses bad reports and unknown devices, writing nothing', async () => {
      await store.registerDevice(registration('dev-1'));
      await expectCode(store.recordReport('ghost', { reportSeq: 1, state: 'idle' }), 'NOT_FOUND');
      const bad = [
        { reportSeq: 0, state: 'idle' },
        { reportSeq: 1, state: 'registered' },
        { reportSeq: 1, state: 'exploded' },
        { reportSeq: 1, state: 'failed' },
        { reportSeq: 1, state: 'downloading', progress: { done: 11, total: 10 } },
        { reportSeq: 1, state: 'idle', detail: 'x'.repeat(257) },
        { reportSeq: 1, state: 'confirmed', runningDigest: 'short' },
      ];
      for (const r of bad) await expectCode(store.recordReport('dev-1', r as never), 'INVALID_ARGUMENT');
      expect((await store.getDevice('dev-1'))!.reportSeq).toBe(0);
      expect(await store.listHistory('dev-1')).toHaveLength(1);
    });

    it('accepts exactly one of two racing reports with the same counter (two stores on one database)', async () => {
      const other = await h.open(url, { clock: clock.now });
      await store.registerDevice(registration('dev-1'));
      const results = await Promise.allSettled([
        store.recordReport('dev-1', { reportSeq: 1, state: 'downloading' }),
        other.recordReport('dev-1', { reportSeq: 1, state: 'failed', detail: 'replayed' }),
        store.recordReport('dev-1', { reportSeq: 1, state: 'installed' }),
      ]);
      expect(outcomes(results)).toEqual({ ok: 1, codes: ['REPORT_REPLAY', 'REPORT_REPLAY'] });
      const history = await store.listHistory('dev-1');
      expect(history.filter((e) => e.reportSeq === 1)).toHaveLength(1);
    });

    it('prunes history older than a time, keeping each device its newest entry', async () => {
      await store.registerDevice(registration('dev-1'));
      await store.registerDevice(registration('dev-2'));
      clock.advance(1000);
      await store.recordReport('dev-1', { reportSeq: 1, state: 'downloading' });
      const cut = clock.t;
      clock.advance(1000);
      await store.recordReport('dev-1', { reportSeq: 2, state: 'installed' });
      expect(await store.pruneHistory(cut + 1)).toBe(2); // dev-1's registration and first report
      expect((await store.listHistory('dev-1')).map((e) => e.transition)).toEqual(['installed']);
      expect((await store.listHistory('dev-2')).map((e) => e.transition)).toEqual(['registered']);
      await expectCode(store.recordReport('dev-1', { reportSeq: 1, state: 'idle' }), 'REPORT_REPLAY');
    });

    it('pages devices by id with filters and counts them by state', async () => {
      for (let i = 0; i < 7; i++) await store.registerDevice(registration(`d${i}`, { group: i % 2 === 0 ? 'even' : 'odd', classId: i === 6 ? '0102' : CLASS }));
      await store.recordReport('d1', { reportSeq: 1, state: 'downloading' });
      await store.recordReport('d3', { reportSeq: 1, state: 'downloading' });
      const first = await store.listDevices({ limit: 3 });
      expect(first.map((d) => d.id)).toEqual(['d0', 'd1', 'd2']);
      expect((await store.listDevices({ limit: 3, after: 'd2' })).map((d) => d.id)).toEqual(['d3', 'd4', 'd5']);
      expect((await store.listDevices({ group: 'odd' })).map((d) => d.id)).toEqual(['d1', 'd3', 'd5']);
      expect((await store.listDevices({ state: 'downloading' })).map((d) => d.id)).toEqual(['d1', 'd3']);
      expect((await store.listDevices({ classId: '0102' })).map((d) => d.id)).toEqual(['d6']);
      expect(await store.countDevicesByState()).toEqual({ registered: 5, downloading: 2 });
      expect(await store.countDevicesByState(CLASS)).toEqual({ registered: 4, downloading: 2 });
      await expectCode(store.listDevices({ limit: 0 }), 'INVALID_ARGUMENT');
      await expectCode(store.listDevices({ limit: 1001 }), 'INVALID_ARGUMENT');
    });
  });
}
