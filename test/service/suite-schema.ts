/** Opening, migrations, restarts and change events: the same tests on every backend. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION } from '../../src/service/migrations.js';
import { openStore } from '../../src/service/open.js';
import type { Store, StoreChange } from '../../src/service/store.js';
import { CLASS, expectCode, registration, release } from './fixtures.js';
import { TestClock, type Harness } from './harness.js';

/** Schema creation and migration, persistence across restarts, change events. */
export function schemaSuite(make: () => Harness): void {
  describe('schema, restarts and events', () => {
    let h: Harness;
    let clock: TestClock;
    beforeEach(() => {
      h = make();
      clock = new TestClock();
    });
    afterEach(() => h.cleanup());

    it('creates the schema on open, and opening again changes nothing', async () => {
      const url = await h.fresh();
      const first = await h.open(url, { clock: clock.now });
      expect(first.backend).toBe(h.backend);
      expect(await first.schemaVersion()).toBe(SCHEMA_VERSION);
      await first.registerDevice(registration('dev-1'));
      await first.close();
      const again = await h.open(url, { clock: clock.now });
      expect(await again.schemaVersion()).toBe(SCHEMA_VERSION);
      expect((await again.getDevice('dev-1'))!.id).toBe('dev-1');
    });

    it('four servers opening one new database at once migrate it once', async () => {
      const url = await h.fresh();
      const stores = await Promise.all([1, 2, 3, 4].map(() => h.open(url, { clock: clock.now })));
      for (const s of stores) expect(await s.schemaVersion()).toBe(SCHEMA_VERSION);
      await stores[0]!.registerDevice(registration('x'));
      expect((await stores[3]!.getDevice('x'))!.id).toBe('x');
    });

    it('refuses a database migrated by a newer coapfw, or with another schema under our number (DB_SCHEMA)', async () => {
      const url = await h.fresh();
      const s = await h.open(url, { clock: clock.now });
      // Write the migration table as a newer version would; only the test reaches under the interface.
      const raw = s as unknown as { driver: { run(sql: string, p?: unknown[]): Promise<number> } };
      await raw.driver.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [SCHEMA_VERSION + 1, 'from the future', 0]);
      await expectCode(openStore(url, { clock: clock.now }), 'DB_SCHEMA');
      await raw.driver.run('DELETE FROM schema_migrations WHERE version = ?', [SCHEMA_VERSION + 1]);
      await raw.driver.run('UPDATE schema_migrations SET name = ? WHERE version = 1', ['something else']);
      await expectCode(openStore(url, { clock: clock.now }), 'DB_SCHEMA');
    });

    it('keeps everything across a restart', async () => {
      const url = await h.fresh();
      let s: Store = await h.open(url, { clock: clock.now });
      await s.publishRelease(release(2));
      await s.registerDevice(registration('dev-1', { mode: 'server' }));
      await s.recordReport('dev-1', { reportSeq: 1, state: 'downloading', sequence: 2, progress: { done: 512, total: 5000 } });
      const cmd = await s.createCommand({ deviceId: 'dev-1', sequence: 2, kind: 'update' });
      const r = await s.createRollout({ classId: CLASS, sequence: 2, waves: [{ size: { count: 1 }, successPermille: 1000, failurePermille: 0, timeLimitS: 60 }], createdBy: 'op' });
      await s.addRolloutTargets(r.id, 0, ['dev-1']);
      await s.close();
      s = await h.open(url, { clock: clock.now });
      expect(await s.getDevice('dev-1')).toMatchObject({ state: 'downloading', progress: { done: 512, total: 5000 }, reportSeq: 1 });
      expect((await s.listHistory('dev-1')).length).toBe(2);
      expect((await s.openCommand('dev-1'))!.id).toBe(cmd.id);
      expect((await s.rolloutCounts(r.id))[0]!.targeted).toBe(1);
      expect((await s.latestRelease(CLASS))!.sequence).toBe(2);
      await expectCode(s.recordReport('dev-1', { reportSeq: 1, state: 'idle' }), 'REPORT_REPLAY');
    });

    it('announces committed changes to subscribers, and nothing for a refused write', async () => {
      const s = await h.open(await h.fresh(), { clock: clock.now });
      const seen: StoreChange[] = [];
      const off = s.subscribe((c) => seen.push(c));
      await s.publishRelease(release(2));
      await s.registerDevice(registration('dev-1'));
      const cmd = await s.createCommand({ deviceId: 'dev-1', sequence: 2, kind: 'update' });
      const r = await s.createRollout({ classId: CLASS, sequence: 2, waves: [{ size: { count: 1 }, successPermille: 1000, failurePermille: 0, timeLimitS: 60 }], createdBy: 'op' });
      expect(seen).toEqual([
        { kind: 'release', classId: CLASS, sequence: 2 },
        { kind: 'device', deviceId: 'dev-1' },
        { kind: 'command', deviceId: 'dev-1', commandId: cmd.id },
        { kind: 'rollout', rolloutId: r.id },
      ]);
      seen.length = 0;
      await expectCode(s.publishRelease(release(2)), 'ALREADY_EXISTS');
      await s.recordReport('dev-1', { reportSeq: 3, state: 'idle' });
      await expectCode(s.recordReport('dev-1', { reportSeq: 2, state: 'idle' }), 'REPORT_REPLAY');
      expect(seen).toEqual([{ kind: 'device', deviceId: 'dev-1' }]);
      off();
      await s.registerDevice(registration('dev-2'));
      expect(seen).toHaveLength(1);
    });

    it('a closed store refuses calls with IO_ERROR', async () => {
      const s = await openStore(await h.fresh(), { clock: clock.now });
      await s.close();
      await s.close(); // idempotent
      await expectCode(s.getDevice('x'), 'IO_ERROR');
      await expectCode(s.registerDevice(registration('x')), 'IO_ERROR');
    });

    it('refuses a clock that is not a safe integer of milliseconds', async () => {
      const s = await h.open(await h.fresh(), { clock: clock.now });
      clock.t = Number.NaN;
      await expectCode(s.registerDevice(registration('x')), 'INVALID_ARGUMENT');
      expect(await s.listDevices()).toEqual([]);
      await expectCode(openStore(await h.fresh(), { clock: () => -1 }), 'INVALID_ARGUMENT');
    });
  });
}
