import { describe, expect, it } from 'vitest';
import { Journal, idleResumeRecord } from '../../src/flash/journal.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { powerCutSweep, runUntilDone } from '../../src/flash/power-cut.js';
import { mulberry32 } from '../../src/flash/prng.js';

const EBS = 256;

async function device(seed: number) {
  const flash = new MemoryFlash({ size: 12 * EBS, eraseBlockSize: EBS, writeAlignment: 8, random: mulberry32(seed) });
  return { flash, layout: createLayout(flash, { slotSize: 2 * EBS }) };
}

/** Count the journal up to 10, resuming from what it holds. */
async function counter({ flash, layout }: Awaited<ReturnType<typeof device>>): Promise<number> {
  const j = await Journal.open(flash, layout);
  for (let n = (j.latest()?.installedSeq ?? 0) + 1; n <= 10; n++) await j.append(idleResumeRecord(n));
  return j.latest()!.installedSeq;
}

describe('powerCutSweep', () => {
  it('cuts at every operation of the clean run and restarts until done', async () => {
    const seen: (number | undefined)[] = [];
    const report = await powerCutSweep({
      setup: device,
      run: counter,
      check: (result, _d, { cutIndex, restarts }) => {
        expect(result).toBe(10);
        seen.push(cutIndex);
        if (cutIndex !== undefined) expect(restarts).toBe(1);
      },
    });
    // 10 records of 80 bytes, 3 per 256-byte page: 10 writes + 3 page erases
    expect(report.ops).toBe(13);
    expect(report).toMatchObject({ runs: 13, cutsHit: 13 });
    expect(seen).toEqual([undefined, ...Array.from({ length: 13 }, (_, i) => i)]);
  });

  it('propagates errors other than POWER_CUT and gives up on endless runs', async () => {
    const d = await device(1);
    await expect(runUntilDone(d, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(
      runUntilDone(d, async ({ flash }) => {
        flash.cutAfter(0);
        await flash.erase(0, EBS);
      }, 3),
    ).rejects.toMatchObject({ code: 'UPDATE_FAILED' });
  });
});
