/**
 * The update service's store: registrations, reports (one transaction each:
 * device row, history, rollout targets, command) and 1 KiB blob reads (what a
 * Block2 block of an image costs), on SQLite in a temporary file and, when
 * COAPFW_TEST_PG names a server, on PostgreSQL in a database of its own.
 * Prints one JSON document: `node dist/bench/store.js`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openStore } from '../src/service/open.js';
import type { Store } from '../src/service/store.js';

const DEVICES = 2000;
const REPORTS_PER_DEVICE = 5;
const BLOCK_READS = 5000;
const CLASS = '1492af1425695e48bf429b2d51f2ab45';

/** Operations per second, and this process's CPU per operation (steadier than wall time on a shared machine). */
async function timed(n: number, fn: (i: number) => Promise<unknown>, concurrency = 1): Promise<{ perSecond: number; cpuUsPerOp: number }> {
  const start = performance.now();
  const cpu = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  const ms = performance.now() - start;
  const used = process.cpuUsage(cpu);
  return { perSecond: Math.round((n / ms) * 1000), cpuUsPerOp: Math.round((used.user + used.system) / n) };
}

async function run(store: Store, concurrency: number): Promise<Record<string, unknown>> {
  const image = randomBytes(256 * 1024);
  const release = await store.publishRelease({ classId: CLASS, vendorId: '01', sequence: 2, urgency: 'normal', envelope: randomBytes(400), images: [image], publisher: 'bench' });
  const register = await timed(DEVICES, (i) => store.registerDevice({ id: `dev-${i}`, vendorId: '01', classId: CLASS, installedSeq: 1, mode: 'client' }), concurrency);
  const report = await timed(
    DEVICES * REPORTS_PER_DEVICE,
    (i) => store.recordReport(`dev-${i % DEVICES}`, { reportSeq: Math.floor(i / DEVICES) + 1, state: 'downloading', sequence: 2, progress: { done: i, total: 1 << 30 } }),
    concurrency,
  );
  const address = release.images[0]!.sha256;
  const blocks = image.length / 1024;
  const read = await timed(BLOCK_READS, (i) => store.readBlob(address, (i % blocks) * 1024, 1024), concurrency);
  return { concurrency, registrations: register, reports: report, blockReads: read };
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { devices: DEVICES, reports: DEVICES * REPORTS_PER_DEVICE, blockReads: BLOCK_READS };
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-bench-store-'));
  try {
    const sqlite = await openStore(`sqlite:${join(dir, 'bench.db')}`);
    out.sqlite = await run(sqlite, 1);
    await sqlite.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const admin = process.env.COAPFW_TEST_PG;
  if (admin === undefined) {
    out.postgres = { skipped: 'COAPFW_TEST_PG is not set' };
  } else {
    const name = `coapfw_bench_${process.pid}`;
    const q = async (sql: string): Promise<void> => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(sql).finally(() => c.end());
    };
    await q(`CREATE DATABASE ${name}`);
    try {
      const url = new URL(admin);
      url.pathname = `/${name}`;
      const store = await openStore(url.toString());
      out.postgres = await run(store, 8);
      await store.close();
    } finally {
      await q(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

await main();
