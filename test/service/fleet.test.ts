/**
 * The fleet test of issue 10: 200 simulated device agents in this process
 * (a third in each mode, each on its own MemoryFlash and loopback address),
 * a real `coapfw serve` process on SQLite and on PostgreSQL, a release
 * published with the real `coapfw publish`; the server is SIGKILLed in the
 * middle of the rollout and started again. Every device must end confirmed on
 * the new sequence, the negotiated ones no earlier than the time they asked
 * for (the server's own timestamps), and nothing may be lost: every device in
 * the registry, its history complete (report counters 1, 2, 3 ... with no
 * gap and no repeat), its download progress never going backwards.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithBinaries, freeUdpPort } from '../../interop/helpers.js';
import { readPublicKey } from '../../src/cli/inputs.js';
import type { AgentMode } from '../../src/device/agent-wire.js';
import type { Store } from '../../src/service/store.js';
import type { CliProcess } from '../cli/spawn-cli.js';
import { CLASS, VENDOR, bytes } from './fixtures.js';
import { Fleet } from './fleet-devices.js';
import { prepareServe, publish, startServe, startServeOnFreePorts, type ServeSetup } from './fleet-serve.js';
import { PG_MISSING, PG_URL, PgHarness, SqliteHarness, type Harness } from './harness.js';

const COUNT = 200;
const MODES: readonly AgentMode[] = ['client', 'server', 'negotiated'];
const IMAGE_SIZE = 24 * 1024;
const POLL_S = 2;

/** Negotiated device i asks for 2..7 s. */
const deferOf = (i: number): number => (MODES[i % 3] === 'negotiated' ? 2 + (i % 6) : 0);

async function until<T>(f: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function confirmedCount(store: Store): Promise<number> {
  return (await store.countDevicesByState(CLASS)).confirmed ?? 0;
}

function fleetSuite(name: string, makeHarness: () => Harness): void {
  let harness: Harness;
  let dir: string;
  let setup: ServeSetup;
  let serve: CliProcess | undefined;
  let store: Store;
  let fleet: Fleet;

  beforeAll(async () => {
    harness = makeHarness();
    dir = await mkdtemp(join(tmpdir(), 'coapfw-fleet-'));
    const db = await harness.fresh();
    ({ setup, serve } = await startServeOnFreePorts(await prepareServe(dir, db, 0, 0, POLL_S), freeUdpPort));
    // The test reads the same database the server writes (SQLite in WAL mode allows a reader beside it).
    store = await harness.open(db);
  }, 60_000);

  afterAll(async () => {
    await fleet?.close();
    serve?.child.kill('SIGKILL');
    await harness?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`${COUNT} agents, a third per mode, end confirmed across a server kill (${name})`, { timeout: 240_000 }, async () => {
    const trust = { anchors: [{ name: 'oem', publicKey: await readPublicKey(join(dir, 'oem.key.pub')) }] };
    fleet = new Fleet({ server: { address: '127.0.0.1', port: setup.port }, count: COUNT, mode: (i) => MODES[i % 3]!, defer: deferOf, trust, vendorId: Buffer.from(VENDOR, 'hex'), classId: Buffer.from(CLASS, 'hex') });
    const t0 = Date.now();
    const mark = (what: string): void => void process.stderr.write(`fleet ${name}: ${what} at ${Date.now() - t0} ms\n`);
    await fleet.start();
    mark('started');
    await until(async () => ((await store.listDevices({ limit: 1000 })).length === COUNT ? true : undefined), 60_000, 'every device registered');

    mark('registered');
    const image = join(dir, 'app-v1.bin');
    await writeFile(image, bytes(IMAGE_SIZE, 11));
    const pub = await publish(setup, image, ['--vendor', VENDOR, '--class', CLASS, '--seq', '1', '--urgency', 'critical', '--downtime', '5']);
    expect(pub.code, pub.err).toBe(0);
    mark('published');

    // Mid-rollout: some devices confirmed, others downloading or waiting for their deferral.
    const atKill = await until(async () => {
      const n = await confirmedCount(store);
      return n >= COUNT / 5 ? n : undefined;
    }, 90_000, 'a fifth of the fleet confirmed');
    mark(`${atKill} confirmed: server killed`);
    serve!.child.kill('SIGKILL');
    await serve!.done;
    expect(atKill).toBeLessThan(COUNT);
    await new Promise((r) => setTimeout(r, 1000));
    serve = await startServe(setup);
    mark('server restarted');

    await until(async () => {
      const all = await store.listDevices({ limit: 1000 });
      return all.length === COUNT && all.every((d) => d.state === 'confirmed' && d.installedSeq === 1) ? true : undefined;
    }, 180_000, 'every device confirmed on sequence 1');
    mark('all confirmed');

    for (const dev of fleet.devices) {
      const history = (await store.listHistory(dev.id, { limit: 1000 })).reverse();
      const states = history.map((e) => e.transition);
      expect(states[0], dev.id).toBe('registered');
      // The last report (re-registrations after it are fine: a device registers at every server restart).
      expect(history.filter((e) => e.reportSeq !== undefined).at(-1)?.transition, dev.id).toBe('confirmed');
      expect(states, dev.id).toEqual(expect.arrayContaining(['downloading', 'downloaded', 'installing', 'installed']));
      const counters = history.flatMap((e) => (e.reportSeq === undefined ? [] : [e.reportSeq]));
      expect(counters, `${dev.id}: report counters`).toEqual(counters.map((_c, i) => i + 1));
      const done = history.filter((e) => e.transition === 'downloading').map((e) => e.progress?.done ?? 0);
      expect(done, `${dev.id}: progress`).toEqual([...done].sort((a, b) => a - b));
      if (dev.mode !== 'negotiated') continue;
      const command = (await store.listCommands(dev.id)).find((c) => c.sequence === 1 && c.state === 'done');
      expect(command, dev.id).toMatchObject({ kind: 'announce', deferS: dev.defer });
      const started = history.find((e) => e.transition === 'downloading')!;
      expect(started.at, `${dev.id} started before its deferral ended`).toBeGreaterThanOrEqual(command!.answeredAt! + dev.defer * 1000);
    }
  });
}

describeWithBinaries('fleet on SQLite', undefined, () => fleetSuite('SQLite', () => new SqliteHarness()));
describeWithBinaries('fleet on PostgreSQL', PG_MISSING, () => fleetSuite('PostgreSQL', () => new PgHarness(PG_URL!)));
