/**
 * Power cut at every flash operation of a whole update (write secondary,
 * request, install swap, mark testing, confirm, or revert swap): run once to
 * count the operations, then for each index cut there, restart, and let the
 * device run to the end. Every boot along the way must run a verified image
 * (A or B) and the run must end in the expected state.
 */
import { describe, expect, it } from 'vitest';
import { boot } from '../../src/device/boot.js';
import { isCoapfwError } from '../../src/errors.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { checkBoot, factory, lifecycle, newTrace, type Trace } from './boot-helpers.js';

type Plan = 'confirm' | 'no-confirm';

/** Run the lifecycle, cutting power at the given op offsets (one per power-on), until it completes. */
async function runWithCuts(plan: Plan, cuts: number[], seed: number, torn: 'prefix' | 'scatter' = 'prefix'): Promise<{ final: string; trace: Trace; cutsHit: number }> {
  const { flash, layout } = await factory(seed, torn);
  const trace = newTrace();
  let cutsHit = 0;
  const queue = [...cuts];
  for (let power = 0; power < 50; power++) {
    const next = queue.shift();
    if (next === undefined) flash.cancelCut();
    else flash.cutAfter(next);
    try {
      const final = await lifecycle(flash, layout, plan, trace);
      // after the run, the device keeps booting the same image, confirmed, without writing
      const ops = flash.ops;
      const again = await boot(flash, layout);
      expect(await checkBoot(flash, layout, again)).toBe(final);
      expect(again.mode).toBe('confirmed');
      expect(flash.ops).toBe(ops);
      return { final, trace, cutsHit };
    } catch (e) {
      if (!isCoapfwError(e, 'POWER_CUT')) throw e;
      cutsHit++;
      flash.powerOn();
    }
  }
  throw new Error('did not complete after 50 power cycles');
}

async function countOps(plan: Plan): Promise<number> {
  const { flash, layout } = await factory();
  const before = flash.ops;
  await lifecycle(flash, layout, plan, newTrace());
  return flash.ops - before;
}

describe('boot model under power cuts', () => {
  it('update + confirm: a cut at every operation ends with B confirmed (or A if the confirm itself was cut)', async () => {
    const n = await countOps('confirm');
    expect(n).toBeGreaterThan(40);
    const clean = await runWithCuts('confirm', [], 1);
    expect(clean.final).toBe('B');
    expect(clean.trace.boots.map((b) => `${b.name}:${b.mode}`)).toEqual(['A:confirmed', 'B:test', 'B:confirmed']);
    for (let k = 0; k < n; k++) {
      for (const torn of ['prefix', 'scatter'] as const) {
        const { final, trace, cutsHit } = await runWithCuts('confirm', [k], 100 + k, torn);
        expect(cutsHit).toBe(1);
        if (trace.cutInConfirm && !trace.confirmDone) expect(['A', 'B']).toContain(final);
        else expect(final).toBe('B');
        if (final === 'A') expect(trace.boots.some((b) => b.mode === 'reverted')).toBe(true);
      }
    }
  });

  it('update without confirm: a cut at every operation (revert included) ends back on A', async () => {
    const n = await countOps('no-confirm');
    const clean = await runWithCuts('no-confirm', [], 1);
    expect(clean.trace.boots.map((b) => `${b.name}:${b.mode}`)).toEqual(['A:confirmed', 'B:test', 'A:reverted']);
    for (let k = 0; k < n; k++) {
      for (const torn of ['prefix', 'scatter'] as const) {
        const { final, cutsHit } = await runWithCuts('no-confirm', [k], 200 + k, torn);
        expect(cutsHit).toBe(1);
        expect(final).toBe('A');
      }
    }
  });

  it('repeated cuts, including cuts while recovering from a cut', async () => {
    const n = await countOps('no-confirm');
    const rnd = mulberry32(77);
    for (let run = 0; run < 150; run++) {
      const plan: Plan = run % 2 === 0 ? 'confirm' : 'no-confirm';
      const cuts = Array.from({ length: 1 + (run % 4) }, () => Math.floor(rnd() * (n / 2)));
      const { final, trace, cutsHit } = await runWithCuts(plan, cuts, 300 + run);
      expect(cutsHit).toBeLessThanOrEqual(cuts.length);
      if (plan === 'no-confirm') expect(final).toBe('A');
      else if (!trace.cutInConfirm) expect(final).toBe('B');
    }
  });
});
