/**
 * PostgreSQL only: change events reach every server sharing the database
 * (LISTEN/NOTIFY), exactly once, only after commit, and again after the
 * listening connection was lost. Fails under CI without a server.
 */
import pg from 'pg';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { describeWithBinaries } from '../../interop/helpers.js';
import { CHANGE_CHANNEL } from '../../src/service/postgres.js';
import type { Store, StoreChange } from '../../src/service/store.js';
import { CLASS, expectCode, registration, release } from './fixtures.js';
import { PG_MISSING, PG_URL, PgHarness } from './harness.js';

/** Collects a store's events; `next` waits (bounded) for one matching a predicate. */
class Events {
  readonly seen: StoreChange[] = [];
  private waiters: { match: (c: StoreChange) => boolean; resolve: (c: StoreChange) => void }[] = [];
  constructor(store: Store) {
    store.subscribe((c) => {
      this.seen.push(c);
      for (const w of this.waiters.filter((x) => x.match(c))) w.resolve(c);
      this.waiters = this.waiters.filter((x) => !x.match(c));
    });
  }
  next(match: (c: StoreChange) => boolean, timeoutMs = 5000): Promise<StoreChange> {
    const found = this.seen.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching event in ${timeoutMs} ms; saw ${JSON.stringify(this.seen)}`)), timeoutMs);
      this.waiters.push({ match, resolve: (c) => (clearTimeout(timer), resolve(c)) });
    });
  }
}

describeWithBinaries('store on PostgreSQL: events across servers', PG_MISSING, () => {
  let h: PgHarness;
  let a: Store;
  let b: Store;
  let url: string;
  beforeEach(async () => {
    h = new PgHarness(PG_URL!);
    url = await h.fresh();
    [a, b] = await Promise.all([h.open(url), h.open(url)]);
  });
  afterEach(() => h.cleanup());

  it('a release published through one server is announced on the other, and a device change back', async () => {
    const onA = new Events(a);
    const onB = new Events(b);
    await a.publishRelease(release(3));
    expect(await onB.next((c) => c.kind === 'release')).toEqual({ kind: 'release', classId: CLASS, sequence: 3 });
    await b.registerDevice(registration('dev-9'));
    expect(await onA.next((c) => c.kind === 'device')).toEqual({ kind: 'device', deviceId: 'dev-9' });
    // The data is there when the event arrives (NOTIFY is delivered after commit).
    expect((await a.getDevice('dev-9'))!.id).toBe('dev-9');
    const cmd = await a.createCommand({ deviceId: 'dev-9', sequence: 3, kind: 'update' });
    expect(await onB.next((c) => c.kind === 'command')).toEqual({ kind: 'command', deviceId: 'dev-9', commandId: cmd.id });
    const r = await b.createRollout({ classId: CLASS, sequence: 3, waves: [{ size: { percent: 10 }, successPermille: 900, failurePermille: 100, timeLimitS: 60 }], createdBy: 'op' });
    expect(await onA.next((c) => c.kind === 'rollout')).toEqual({ kind: 'rollout', rolloutId: r.id });
    // Each server saw its own changes once (locally, not again through NOTIFY), and the other's once.
    await b.registerDevice(registration('barrier'));
    await onA.next((c) => c.kind === 'device' && c.deviceId === 'barrier');
    const kinds = (e: Events): string[] => e.seen.map((c) => c.kind);
    expect(kinds(onA)).toEqual(['release', 'device', 'command', 'rollout', 'device']);
    expect(kinds(onB)).toEqual(['release', 'device', 'command', 'rollout', 'device']);
  });

  it('a refused write announces nothing anywhere; foreign NOTIFYs on the channel are ignored', async () => {
    const onB = new Events(b);
    await a.publishRelease(release(3));
    await onB.next((x) => x.kind === 'release'); // delivered asynchronously: wait before counting
    onB.seen.length = 0;
    await expectCode(a.publishRelease(release(3)), 'ALREADY_EXISTS');
    // Someone else's NOTIFYs on our channel: not JSON, and JSON that is not a change.
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`SELECT pg_notify('${CHANGE_CHANNEL}', 'not json'), pg_notify('${CHANGE_CHANNEL}', '{"o":"x","c":{}}')`);
    await client.end();
    await a.registerDevice(registration('barrier'));
    await onB.next((x) => x.kind === 'device');
    expect(onB.seen).toEqual([{ kind: 'device', deviceId: 'barrier' }]);
  });

  it('after the listening connection is killed, the server says resync and hears changes again', async () => {
    const onB = new Events(b);
    const killed = await h.admin(
      "SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
      [new URL(url).pathname.slice(1)],
    );
    expect(killed.rowCount).toBe(2); // a's and b's listeners
    await onB.next((c) => c.kind === 'resync');
    await a.publishRelease(release(4));
    expect(await onB.next((c) => c.kind === 'release')).toEqual({ kind: 'release', classId: CLASS, sequence: 4 });
  });
});
