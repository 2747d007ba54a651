/**
 * Every power cut: a full update (download, verify, install, reboot,
 * confirm) of a 24 KiB image with 4 KiB erase blocks, cut once at every
 * flash operation index and restarted until done.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR } from './update-helpers.js';

const A = image(10_000, 1);
const B = image(24 * 1024 - 100, 2); // 24 blocks of 1 KiB, the last one short
const NAMES = new Map([
  [hex(sha256(A)), 'A'],
  [hex(sha256(B)), 'B'],
]);
const BLOCKS = 24;
const BLOCKS_PER_ERASE_BLOCK = 4;

interface Device {
  flash: MemoryFlash;
  layout: FlashLayout;
  server: MemUpdateServer;
  imagePath: string;
  runtime: FakeRuntime;
  boots: string[];
  /** Image blocks served at the start of each power-on. */
  servedAtPowerOn: number[];
}

const servers: MemUpdateServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(seed: number, tornWrite: 'prefix' | 'scatter' = 'prefix'): Promise<Device> {
  const flash = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096, writeAlignment: 4, random: mulberry32(seed), tornWrite });
  const layout = createLayout(flash, { slotSize: 28 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  const server = new MemUpdateServer();
  servers.push(server);
  const imagePath = server.publish(B, 2);
  return { flash, layout, server, imagePath, runtime: new FakeRuntime(seed), boots: [], servedAtPowerOn: [] };
}

/** Checks a boot: the image is A or B and the primary slot really holds it. */
async function checkBoot(d: Device, digest: Uint8Array, size: number, mode: string): Promise<string> {
  const name = NAMES.get(hex(digest));
  expect(name).toBeDefined();
  expect(hex(await hashArea(d.flash, d.layout.primary, size))).toBe(hex(digest));
  d.boots.push(`${name}:${mode}`);
  return name!;
}

/**
 * The device from power-on until it runs B confirmed: boot (confirming a
 * test image), update if needed, reboot. `selfTest` false: the test image
 * never confirms (the revert scenario), and the run ends when the update is
 * given up with A running.
 */
async function deviceMain(d: Device, selfTest: boolean): Promise<string> {
  d.servedAtPowerOn.push(d.server.servedOf(d.imagePath));
  for (let i = 0; i < 10; i++) {
    const p = await powerOn(d.flash, d.layout, { selfTest: () => selfTest });
    const name = await checkBoot(d, p.boot.image.digest, p.boot.image.size, p.boot.mode);
    if (name === 'B' && p.installedSequence === 2) return 'B'; // recorded only once confirmed
    if (p.outcome === 'unconfirmed') continue; // the application resets without confirming
    const c = d.server.client(d.runtime);
    try {
      const st = await runUpdate({
        flash: d.flash,
        layout: d.layout,
        request: c.request,
        manifestUri: MANIFEST_URI,
        runtime: d.runtime,
        trust: TRUST,
        vendorId: VENDOR,
        classId: CLASS,
        maxInstallAttempts: selfTest ? 3 : 1,
      });
      if (st.result === 'rejected' && !selfTest) return `A-kept:${st.error}`;
      expect(st.result).toBe('installed');
    } finally {
      await c.close();
    }
  }
  throw new Error(`device did not settle: ${d.boots.join(' ')}`);
}

/**
 * Blocks served: after a cut, a power-on downloads again at most one erase
 * block that an earlier power-on had already fetched (the blocks since the
 * last journal record, the torn one included), so in all the image costs
 * BLOCKS plus one erase block per cut.
 */
function checkRefetch(d: Device): void {
  const total = d.server.servedOf(d.imagePath);
  const cuts = d.servedAtPowerOn.length - 1;
  expect(total).toBeLessThanOrEqual(BLOCKS + BLOCKS_PER_ERASE_BLOCK * cuts);
}

describe('update under a power cut at every flash operation', () => {
  it('always ends with B confirmed; every boot runs A or B; a resume re-downloads at most one erase block', async () => {
    let sawResume = 0;
    const report = await powerCutSweep<Device, string>({
      setup,
      run: (d) => deviceMain(d, true),
      check: async (result, d, { cutIndex, restarts }) => {
        expect(result).toBe('B');
        expect(hex(await hashArea(d.flash, d.layout.primary, B.length))).toBe(hex(sha256(B)));
        expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
        if (cutIndex === undefined) expect(d.server.servedOf(d.imagePath)).toBe(BLOCKS);
        else expect(restarts).toBeLessThanOrEqual(1);
        checkRefetch(d);
        if (d.server.servedOf(d.imagePath) > BLOCKS) sawResume++;
      },
    });
    expect(report.runs).toBe(report.ops);
    expect(report.ops).toBeGreaterThan(60);
    expect(report.cutsHit).toBe(report.runs);
    expect(sawResume).toBeGreaterThan(10);
  });

  it('a test image that never confirms is reverted; cuts during the revert still leave A running', async () => {
    const report = await powerCutSweep<Device, string>({
      setup,
      run: (d) => deviceMain(d, false),
      check: async (result, d) => {
        expect(result).toBe('A-kept:UPDATE_FAILED');
        expect(d.boots.some((b) => b === 'B:test'), d.boots.join(' ')).toBe(true);
        expect(d.boots.at(-1)).toMatch(/^A:/);
        const p = await powerOn(d.flash, d.layout);
        expect(p.boot.mode).toBe('confirmed');
        expect(hex(p.boot.image.digest)).toBe(hex(sha256(A)));
        expect(p.installedSequence).toBe(1);
      },
    });
    expect(report.cutsHit).toBe(report.runs);
  });

  it('with scattered torn writes (a random subset of bytes programmed), every third cut index', async () => {
    const report = await powerCutSweep<Device, string>({
      setup: (seed) => setup(seed, 'scatter'),
      run: (d) => deviceMain(d, true),
      cutIndexes: (ops) => Array.from({ length: Math.ceil(ops / 3) }, (_, i) => i * 3),
      check: async (result, d) => {
        expect(result).toBe('B');
        expect(hex(await hashArea(d.flash, d.layout.primary, B.length))).toBe(hex(sha256(B)));
        checkRefetch(d);
      },
    });
    expect(report.cutsHit).toBe(report.runs);
  });

  it('repeated power cuts at random gaps (cuts during recovery too) still end with B confirmed', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 8 }), async (seed, gaps) => {
        const d = await setup(seed);
        let result: string | undefined;
        for (let i = 0; result === undefined; i++) {
          if (i < gaps.length) d.flash.cutAfter(gaps[i]!);
          else d.flash.cancelCut();
          try {
            result = await deviceMain(d, true);
          } catch (e) {
            if (!isCoapfwError(e, 'POWER_CUT')) throw e;
            d.flash.powerOn();
          }
          expect(i).toBeLessThan(gaps.length + 1);
        }
        d.flash.cancelCut();
        expect(result).toBe('B');
        expect(hex(await hashArea(d.flash, d.layout.primary, B.length))).toBe(hex(sha256(B)));
        checkRefetch(d);
      }),
      { numRuns: 25, seed: 4242 },
    );
  });
});
