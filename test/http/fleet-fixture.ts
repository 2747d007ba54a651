/**
 * A fleet for the HTTP tests: a SQLite store in a temporary directory, 50
 * registered devices in the three update modes, two releases, a rollout in
 * its second wave with confirmations spread over time (some failed), the
 * rollout engine and the operator's HTTP server on a free loopback port.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import type { UpdateMode } from '../../src/service/model.js';
import { openStore } from '../../src/service/open.js';
import { RolloutEngine } from '../../src/service/rollout-engine.js';
import type { Store } from '../../src/service/store.js';
import { CLASS, registration, release } from '../service/fixtures.js';
import { TestClock } from '../service/harness.js';

/** The fixture's handles. */
export interface Fleet {
  readonly store: Store;
  readonly engine: RolloutEngine;
  readonly http: HttpServer;
  readonly clock: TestClock;
  readonly token: string;
  readonly rolloutId: number;
  readonly dir: string;
  /** Report for a device through the store (its counter kept here). */
  report(id: string, state: 'downloading' | 'confirmed' | 'failed', extra?: object): Promise<void>;
  close(): Promise<void>;
}

export const TOKEN = 'test-token-0123456789abcdef';
const MODES: readonly UpdateMode[] = ['server', 'negotiated', 'client'];

/** Start the fleet; the clock starts 20 minutes in the past so that "last seen" reads naturally. */
export async function startFleet(devices = 50): Promise<Fleet> {
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-http-'));
  const clock = new TestClock(Date.now() - 20 * 60_000);
  const store = await openStore(join(dir, 'fleet.db'), { clock: clock.now });
  const engine = new RolloutEngine({ store, clock: clock.now });
  const counters = new Map<string, number>();
  const report = async (id: string, state: 'downloading' | 'confirmed' | 'failed', extra: object = {}): Promise<void> => {
    const n = (counters.get(id) ?? 0) + 1;
    counters.set(id, n);
    const more = state === 'confirmed' ? { installedSeq: 2 } : state === 'failed' ? { detail: 'image digest mismatch after download' } : { progress: { done: 40_960, total: 131_072 } };
    await store.recordReport(id, { reportSeq: n, state, sequence: 2, ...more, ...extra });
  };
  await store.publishRelease(release(1, { urgency: 'normal' }));
  clock.advance(60_000);
  await store.publishRelease(release(2, { urgency: 'critical', publisher: 'release-bot' }));
  const ids = Array.from({ length: devices }, (_, i) => `sensor-${String(i + 1).padStart(3, '0')}`);
  for (const [i, id] of ids.entries()) {
    await store.registerDevice(registration(id, { mode: MODES[i % 3]!, group: i < devices / 2 ? 'building-a' : 'building-b' }));
  }
  const waves = [
    { size: { count: 5 }, successPermille: 800, failurePermille: 400, timeLimitS: 3600 },
    { size: { percent: 50 }, successPermille: 900, failurePermille: 200, timeLimitS: 7200 },
    { size: { percent: 100 }, successPermille: 950, failurePermille: 100, timeLimitS: 14_400 },
  ];
  const rollout = await engine.create({ classId: CLASS, sequence: 2, waves, createdBy: 'alice' });
  for (const id of ids.slice(0, 5)) {
    clock.advance(45_000);
    await report(id, 'confirmed');
  }
  await engine.step(rollout.id);
  const second = ids.slice(5, 25);
  for (const [i, id] of second.entries()) {
    clock.advance(20_000);
    await report(id, i === 7 ? 'failed' : i < 12 ? 'confirmed' : 'downloading');
  }
  await engine.step(rollout.id);
  clock.t = Date.now();
  const http = await startHttpServer({ host: '127.0.0.1', port: 0, store, engine, token: TOKEN });
  return {
    store,
    engine,
    http,
    clock,
    token: TOKEN,
    rolloutId: rollout.id,
    dir,
    report,
    async close() {
      await http.close();
      await engine.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
