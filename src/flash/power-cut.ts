/**
 * Power-cut sweeps on a MemoryFlash, for tests of anything that keeps state
 * in flash (journal, boot model, the device update state machine):
 * run the scenario once to count its flash operations, then once per
 * operation index with power cut exactly there, restarting the scenario on
 * the same chip after each cut until it completes.
 *
 * @example
 * await powerCutSweep({
 *   setup: async (seed) => { const flash = new MemoryFlash({ size, random: mulberry32(seed) }); ...; return { flash, layout }; },
 *   run: async ({ flash, layout }) => deviceMain(flash, layout),   // from power-on to done
 *   check: (result, device, { cutIndex }) => expect(result).toBe('updated'),
 * });
 */
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { MemoryFlash } from './memory.js';

/** Options of {@link powerCutSweep}. */
export interface PowerCutSweepOptions<D extends { flash: MemoryFlash }, T> {
  /** A fresh device before the scenario (called once per run; `seed` differs per run). */
  setup: (seed: number) => Promise<D>;
  /** The device from power-on until done; called again on the same chip after each cut. */
  run: (device: D, powerOn: number) => Promise<T>;
  /** Checks one completed run; `cutIndex` is undefined for the uncut run. Throw to fail. */
  check?: (result: T, device: D, info: { cutIndex: number | undefined; restarts: number }) => void | Promise<void>;
  /** Operation indexes to cut at; default every index of the uncut run. */
  cutIndexes?: (ops: number) => Iterable<number>;
  /** Give up (throw) after this many power-ons in one run. Default 50. */
  maxPowerOns?: number;
}

/** What a sweep did. */
export interface PowerCutSweepReport {
  /** Flash operations (writes and erases) of the uncut run. */
  ops: number;
  /** Runs with a cut. */
  runs: number;
  /** Cuts that actually hit (a run may finish before its cut index). */
  cutsHit: number;
}

/**
 * Run `run` on `device.flash` until it completes, powering the chip back on
 * after each `POWER_CUT`. Other errors propagate.
 */
export async function runUntilDone<D extends { flash: MemoryFlash }, T>(
  device: D,
  run: (device: D, powerOn: number) => Promise<T>,
  maxPowerOns = 50,
): Promise<{ result: T; restarts: number }> {
  for (let powerOn = 0; powerOn < maxPowerOns; powerOn++) {
    try {
      return { result: await run(device, powerOn), restarts: powerOn };
    } catch (e) {
      if (!isCoapfwError(e, 'POWER_CUT')) throw e;
      device.flash.powerOn();
    }
  }
  throw new CoapfwError('UPDATE_FAILED', `power-cut run did not complete after ${maxPowerOns} power-ons`);
}

/** Sweep a power cut over every flash operation of a scenario; see the file comment. */
export async function powerCutSweep<D extends { flash: MemoryFlash }, T>(options: PowerCutSweepOptions<D, T>): Promise<PowerCutSweepReport> {
  const max = options.maxPowerOns ?? 50;
  const clean = await options.setup(0);
  const start = clean.flash.ops;
  const first = await runUntilDone(clean, options.run, 1);
  const ops = clean.flash.ops - start;
  await options.check?.(first.result, clean, { cutIndex: undefined, restarts: 0 });
  let runs = 0;
  let cutsHit = 0;
  for (const k of options.cutIndexes?.(ops) ?? Array.from({ length: ops }, (_, i) => i)) {
    const device = await options.setup(k + 1);
    device.flash.cutAfter(k);
    const { result, restarts } = await runUntilDone(device, options.run, max);
    device.flash.cancelCut();
    runs++;
    cutsHit += restarts;
    await options.check?.(result, device, { cutIndex: k, restarts });
  }
  return { ops, runs, cutsHit };
}
