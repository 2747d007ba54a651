/**
 * A two-image install (the WG's example 5 shape) under a power cut at every
 * flash operation: download of both images, install request, the set swap
 * at the next boot, the test boot, confirm, and (unconfirmed) the set revert.
 * Every boot along the way must run a whole set, A0+A1 or B0+B1, never a mix.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../src/flash/journal.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import type { MemoryFlash } from '../../src/flash/memory.js';
import type { FlashLayout } from '../../src/flash/layout.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemUpdateServer } from './update-helpers.js';
import { board, example5, powerOn, runningSet, serveSet, updateOnce } from './multi-helpers.js';

interface Device {
  flash: MemoryFlash;
  layout: FlashLayout;
  server: MemUpdateServer;
  runtime: FakeRuntime;
  boots: string[];
}

const servers: MemUpdateServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
const counts: Record<string, unknown>[] = [];
afterAll(() => console.log(JSON.stringify({ test: 'update-multi-powercut', sweeps: counts })));

async function setup(seed: number, torn: 'prefix' | 'scatter' = 'prefix'): Promise<Device> {
  const { flash, layout } = await board(seed, torn);
  const server = new MemUpdateServer();
  servers.push(server);
  serveSet(server, example5());
  return { flash, layout, server, runtime: new FakeRuntime(seed), boots: [] };
}

/** Power on until the device runs B confirmed (or, when the self-test always fails, until the update is given up). */
async function deviceMain(d: Device, selfTest: boolean): Promise<string> {
  for (let i = 0; i < 12; i++) {
    const p = await powerOn(d.flash, d.layout, { selfTest: () => selfTest });
    const set = await runningSet(d.flash, d.layout, p);
    d.boots.push(`${set}:${p.boot.mode}`);
    if (set === 'B' && p.installedSequence === 2) return 'B';
    if (p.outcome === 'unconfirmed') continue;
    const st = await updateOnce(d, d.server, d.runtime, { maxInstallAttempts: selfTest ? 3 : 1 });
    if (st.result === 'rejected' && !selfTest) return `A-kept:${st.error}`;
    expect(st.result, JSON.stringify(st)).toBe('installed');
  }
  throw new Error(`device did not settle: ${d.boots.join(' ')}`);
}

describe('two-image install under a power cut at every flash operation', () => {
  it('ends with the new set confirmed; every boot runs a whole set', async () => {
    let boots = 0;
    const report = await powerCutSweep<Device, string>({
      setup,
      run: (d) => deviceMain(d, true),
      check: async (result, d) => {
        expect(result, d.boots.join(' ')).toBe('B');
        expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
        boots += d.boots.length; // each one checked by runningSet: a whole set, verified in its slots
      },
    });
    counts.push({ scenario: 'install+confirm', operations: report.ops, cutRuns: report.runs, cutsHit: report.cutsHit, bootsChecked: boots, failures: 0 });
    expect(report.runs).toBe(report.ops);
    expect(report.cutsHit).toBe(report.runs);
    expect(report.ops).toBeGreaterThan(120);
  });

  it('an unconfirmed set is reverted as a whole, whatever operation a cut hits (revert swap included)', async () => {
    let boots = 0;
    const report = await powerCutSweep<Device, string>({
      setup: (seed) => setup(seed, 'scatter'),
      run: (d) => deviceMain(d, false),
      check: async (result, d) => {
        expect(result).toBe('A-kept:UPDATE_FAILED');
        boots += d.boots.length;
        expect(d.boots.some((b) => b === 'B:test'), d.boots.join(' ')).toBe(true);
        const p = await powerOn(d.flash, d.layout);
        expect([await runningSet(d.flash, d.layout, p), p.boot.mode, p.installedSequence]).toEqual(['A', 'confirmed', 1]);
      },
    });
    counts.push({ scenario: 'install+revert (scattered torn writes)', operations: report.ops, cutRuns: report.runs, cutsHit: report.cutsHit, bootsChecked: boots, failures: 0 });
    expect(report.cutsHit).toBe(report.runs);
  });
});
