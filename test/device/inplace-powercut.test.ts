/**
 * Power cuts at every flash operation of a single-bank (in-place) install,
 * for three image sizes on 1 KiB erase blocks (the large one writes 5
 * journal pages' worth of records, wrapping the 2-page ring twice). After
 * every cut the device powers on again: every boot runs an image whose
 * SHA-256 matches its boot record, or the recovery loader, which resumes the
 * overwrite from the journal; no cut leaves it unbootable, and every run ends
 * with the new image installed. Measured per size and printed as JSON: image
 * blocks fetched again per cut, digest-resource blocks, and flash wear (the
 * most erases of one slot block in a run, and erases of the recovery area).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { provisionDevice } from '../../src/device/device.js';
import { powerOnInPlace, runRecoveryLoader } from '../../src/device/inplace-device.js';
import { runUpdate } from '../../src/device/updater.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createSingleBankLayout, singleBankLayoutSize, type FlashArea, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash, type FlashOperation } from '../../src/flash/memory.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { blobPath, release, serveRelease, updateOptions } from './inplace-helpers.js';
import { hex, image, MemUpdateServer } from './update-helpers.js';

const EBS = 1024;
const SIZES = [
  { name: 'small', bytes: 3 * 1024 - 50 },
  { name: 'medium', bytes: 20 * 1024 - 100 },
  { name: 'large', bytes: 60 * 1024 - 300 },
];

interface Device {
  flash: MemoryFlash;
  layout: FlashLayout;
  server: MemUpdateServer;
  runtime: FakeRuntime;
  boots: { state: 'run' | 'recovery'; reason?: string }[];
  imagePath: string;
  digestsPath: string;
}

const servers: MemUpdateServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
const results: Record<string, unknown>[] = [];
afterAll(() => console.log(JSON.stringify({ test: 'inplace-powercut', sweeps: results })));

function inArea(o: FlashOperation, a: FlashArea): boolean {
  return o.offset >= a.offset && o.offset < a.offset + a.size;
}

async function sweep(bytes: number): Promise<Record<string, unknown>> {
  const A = image(bytes - 700, 11);
  const B = image(bytes, 12);
  const slotSize = Math.ceil(bytes / EBS) * EBS;
  const g = { size: 0, eraseBlockSize: EBS, writeAlignment: 4 };
  g.size = singleBankLayoutSize(g, { slotSize });
  const layout = createSingleBankLayout(g, { slotSize });
  const factory = new MemoryFlash(g);
  await provisionDevice(factory, layout, A, 1);
  const provisioned = await factory.read(0, g.size);
  const r = release(B, 2);
  const blocks = Math.ceil(bytes / 1024);
  let trace: FlashOperation[] = [];
  const refetched: number[] = [];
  const worstSlotWear: number[] = [];
  const digestBlocks: number[] = [];
  let recoveries = 0;

  const setup = async (seed: number): Promise<Device> => {
    const flash = new MemoryFlash({ ...g, contents: provisioned, random: mulberry32(seed), ...(seed === 0 ? { onOperation: (o: FlashOperation) => void trace.push(o) } : {}) });
    const server = new MemUpdateServer();
    servers.push(server);
    serveRelease(server, r);
    return { flash, layout, server, runtime: new FakeRuntime(seed), boots: [], imagePath: blobPath(r, 'image'), digestsPath: blobPath(r, 'image-digests') };
  };
  const run = async (d: Device): Promise<string> => {
    for (let i = 0; i < 8; i++) {
      const o = updateOptions(d.server, d.flash, d.layout, d.runtime);
      try {
        const p = await powerOnInPlace(o.opts, { maxRecoveries: 0 });
        d.boots.push(p.boot.state === 'run' ? { state: 'run' } : { state: 'recovery', reason: p.boot.reason });
        if (p.boot.state === 'recovery') {
          // The loader resumes the staged update (power may fail again inside it).
          expect(p.boot.reason).toBe('overwrite');
          const st = await runRecoveryLoader(o.opts);
          expect(st.result, JSON.stringify(st)).toBe('installed');
          continue;
        }
        const running = hex(p.boot.image.digest);
        expect([hex(sha256(A)), hex(sha256(B))]).toContain(running);
        // The bootloader's claim, checked independently: the slot hashes to what runs.
        expect(hex(await hashArea(d.flash, d.layout.primary, p.boot.image.size))).toBe(running);
        if (running === hex(sha256(B)) && p.installedSequence === 2) return 'B';
        const st = await runUpdate(o.opts);
        expect(st.result, JSON.stringify(st)).toBe('installed');
      } finally {
        await o.close();
      }
    }
    throw new Error('device did not settle');
  };
  const report = await powerCutSweep<Device, string>({
    setup,
    run,
    check: async (result, d, { cutIndex, restarts }) => {
      expect(result).toBe('B');
      expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
      expect(d.boots.every((b) => b.state === 'run' || b.reason === 'overwrite')).toBe(true);
      recoveries += d.boots.filter((b) => b.state === 'recovery').length;
      const served = d.server.servedOf(d.imagePath);
      if (cutIndex === undefined) expect(served).toBe(blocks);
      else {
        // At most the erase block in progress (one 1 KiB block here) and the block in flight again per cut.
        expect(served, `cut at ${cutIndex}`).toBeLessThanOrEqual(blocks + 2 * restarts);
        refetched.push(served - blocks);
      }
      digestBlocks.push(d.server.servedOf(d.digestsPath));
      worstSlotWear.push(Math.max(...d.flash.eraseCounts.subarray(0, slotSize / EBS)));
    },
  });
  expect(report.cutsHit).toBe(report.runs);
  // Most cuts land after the first erase of the slot: the recovery loader, not the old image, had to finish them.
  expect(recoveries).toBeGreaterThan(report.runs / 2);
  const journalPageErases = trace.filter((o) => o.kind === 'erase' && inArea(o, layout.journal)).length;
  const clean = trace.length;
  const out = {
    imageBytes: bytes,
    operations: report.ops,
    cutRuns: report.runs,
    recoveryLoaderBoots: recoveries,
    journalRecords: trace.filter((o) => o.kind === 'write' && inArea(o, layout.journal)).length,
    journalPageTurns: journalPageErases,
    imageBlocksRefetchedPerCut: { max: Math.max(...refetched), mean: +(refetched.reduce((a, b) => a + b, 0) / refetched.length).toFixed(2) },
    digestBlocksPerRun: { uncut: digestBlocks[0], max: Math.max(...digestBlocks) },
    slotEraseBlockWear: { uncut: 1, worstAfterCuts: Math.max(...worstSlotWear) },
    recoveryAreaErasesUncut: trace.filter((o) => o.kind === 'erase' && inArea(o, layout.recovery!.staging)).length,
    flashOpsUncut: clean,
  };
  trace = [];
  return out;
}

describe('power cuts at every flash operation of a single-bank install', () => {
  for (const size of SIZES) {
    it(`${size.name} image (${size.bytes} bytes): every boot runs a verified image or the recovery loader, which finishes`, { timeout: 600_000 }, async () => {
      const out = await sweep(size.bytes);
      results.push({ size: size.name, ...out });
      if (size.name === 'large') expect(out.journalPageTurns as number).toBeGreaterThanOrEqual(4);
    });
  }
});
