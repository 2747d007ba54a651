/**
 * Power cuts across three image sizes (issue 8, item 12), on a chip with
 * 1 KiB erase blocks, where a journal page holds 12 records and a boot-log
 * page 10: the small update turns no log page, the medium one turns both
 * rings, the large one wraps the journal ring about 4 times and the boot-log
 * ring about 15 times. Cut points: every operation of the small update; for
 * the others every operation within 2 of each log page erase (where a ring
 * turns a page: the last appends, the erase, the first appends after it) and
 * a seeded sample of the rest. Every run must end with the new image
 * confirmed, every boot on the way must run a verified image (old or new),
 * and a resume must fetch again at most one erase block per cut.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout, type FlashArea, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash, type FlashOperation } from '../../src/flash/memory.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR } from './update-helpers.js';

const EBS = 1024;
const A = image(2000, 1);

interface Size {
  readonly name: string;
  readonly bytes: number;
  /** Cut at every operation (true) or near page turns plus `sample` others. */
  readonly every: boolean;
  readonly sample: number;
}
const SIZES: Size[] = [
  { name: 'small', bytes: 3 * 1024 - 50, every: true, sample: 0 },
  { name: 'medium', bytes: 24 * 1024 - 100, every: false, sample: 30 },
  { name: 'large', bytes: 96 * 1024 - 300, every: false, sample: 40 },
];

interface Device {
  flash: MemoryFlash;
  layout: FlashLayout;
  server: MemUpdateServer;
  path: string;
  runtime: FakeRuntime;
  /** Image blocks served at the start of each power-on. */
  servedAtPowerOn: number[];
}

const servers: MemUpdateServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
const counts: Record<string, unknown>[] = [];
afterAll(() => console.log(JSON.stringify({ test: 'update-powercut-sizes', sweeps: counts })));

function geometry(bytes: number) {
  const slotSize = Math.ceil(bytes / EBS) * EBS;
  return { size: 2 * slotSize + 5 * EBS, eraseBlockSize: EBS, writeAlignment: 4, slotSize };
}

/** Which operations erase a page of `area` (the journal or the boot log): where its ring turns. */
function pageTurns(ops: readonly FlashOperation[], area: FlashArea): number[] {
  return ops.filter((o) => o.kind === 'erase' && o.offset >= area.offset && o.offset < area.offset + area.size).map((o) => o.index);
}

async function sweep(size: Size): Promise<void> {
  const B = image(size.bytes, 2);
  const g = geometry(size.bytes);
  const layout = createLayout(g, { slotSize: g.slotSize });
  const factory = new MemoryFlash(g);
  await provisionDevice(factory, layout, A, 1);
  const provisioned = await factory.read(0, g.size);
  const blocks = Math.ceil(size.bytes / 1024);
  let trace: FlashOperation[] = [];

  const setup = async (seed: number): Promise<Device> => {
    const record = seed === 0; // the uncut run: learn where the page turns are
    const flash = new MemoryFlash({ ...g, contents: provisioned, random: mulberry32(seed), ...(record ? { onOperation: (o: FlashOperation) => void trace.push(o) } : {}) });
    const server = new MemUpdateServer();
    servers.push(server);
    const path = server.publish(B, 2);
    return { flash, layout, server, path, runtime: new FakeRuntime(seed), servedAtPowerOn: [] };
  };
  const run = async (d: Device): Promise<string> => {
    d.servedAtPowerOn.push(d.server.servedOf(d.path));
    for (let i = 0; i < 6; i++) {
      const p = await powerOn(d.flash, d.layout);
      const running = hex(p.boot.image.digest);
      expect([hex(sha256(A)), hex(sha256(B))]).toContain(running);
      expect(hex(await hashArea(d.flash, d.layout.primary, p.boot.image.size))).toBe(running);
      if (running === hex(sha256(B)) && p.installedSequence === 2) return 'B';
      const c = d.server.client(d.runtime);
      const st = await runUpdate({ flash: d.flash, layout: d.layout, request: c.request, manifestUri: MANIFEST_URI, runtime: d.runtime, trust: TRUST, vendorId: VENDOR, classId: CLASS }).finally(() => c.close());
      expect(st.result, JSON.stringify(st)).toBe('installed');
    }
    throw new Error('device did not settle');
  };
  let turns: number[] = [];
  let journalTurns = 0;
  let bootLogTurns = 0;
  let cuts: number[] = [];
  const report = await powerCutSweep<Device, string>({
    setup,
    run,
    cutIndexes: (ops) => {
      // Indexes of the uncut run, relative to its first operation.
      const first = trace[0]?.index ?? 0;
      const j = pageTurns(trace, layout.journal);
      const b = pageTurns(trace, layout.bootLog);
      [journalTurns, bootLogTurns] = [j.length, b.length];
      turns = [...j, ...b].map((i) => i - first).sort((x, y) => x - y);
      if (size.every) return (cuts = Array.from({ length: ops }, (_, i) => i));
      const near = new Set(turns.flatMap((t) => [t - 2, t - 1, t, t + 1, t + 2]).filter((i) => i >= 0 && i < ops));
      const rest = Array.from({ length: ops }, (_, i) => i).filter((i) => !near.has(i));
      const rnd = mulberry32(1234 + size.bytes);
      for (let k = rest.length - 1; k > 0; k--) {
        const j = Math.floor(rnd() * (k + 1));
        [rest[k], rest[j]] = [rest[j]!, rest[k]!];
      }
      return (cuts = [...near, ...rest.slice(0, size.sample)].sort((a, b) => a - b));
    },
    check: async (result, d, { cutIndex }) => {
      expect(result).toBe('B');
      expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
      const served = d.server.servedOf(d.path);
      if (cutIndex === undefined) expect(served).toBe(blocks);
      // At most one erase block (one 1 KiB block here) and the block in flight again per cut.
      else expect(served, `cut at ${cutIndex}`).toBeLessThanOrEqual(blocks + 2 * (d.servedAtPowerOn.length - 1));
    },
  });
  trace = [];
  const journalPages = layout.journal.size / EBS;
  const bootPages = layout.bootLog.size / EBS;
  counts.push({
    size: size.name,
    imageBytes: size.bytes,
    operations: report.ops,
    journalPageTurns: journalTurns,
    bootLogPageTurns: bootLogTurns,
    cutRuns: report.runs,
    cutsNearPageTurns: cuts.filter((c) => turns.some((t) => Math.abs(c - t) <= 2)).length,
    cutsHit: report.cutsHit,
    failures: 0,
    ringPages: { journal: journalPages, bootLog: bootPages },
  });
  expect(report.cutsHit).toBe(report.runs);
  // The small update never turns a journal page; the large one wraps both rings (2 pages each) at least 4 times.
  if (size.name === 'small') expect(journalTurns).toBe(0);
  if (size.name === 'large') expect([journalTurns >= 4 * journalPages, bootLogTurns >= 4 * bootPages]).toEqual([true, true]);
}

describe('power cuts across image sizes, through page turns of the journal and boot-log rings', () => {
  for (const size of SIZES) {
    it(`${size.name} image (${size.bytes} bytes): ${size.every ? 'every operation' : `every operation near a page turn and ${size.sample} others`}`, { timeout: 300_000 }, async () => {
      await sweep(size);
    });
  }
});
