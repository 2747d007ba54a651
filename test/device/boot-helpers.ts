/** Shared fixtures for the boot model tests. */
import { sha256 } from '@noble/hashes/sha2.js';
import { expect } from 'vitest';
import { boot, confirm, installFactoryImage, requestTestBoot, type BootResult } from '../../src/device/boot.js';
import { isCoapfwError } from '../../src/errors.js';
import { hashArea, writeImage } from '../../src/flash/image.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';

export const EBS = 256;

export function image(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return new Uint8Array(n).map(() => Math.floor(r() * 256));
}

/** Factory image A (3 erase blocks) and update B (4 erase blocks, so the swap moves more than A covers). */
export const A = image(700, 1);
export const B = image(1000, 2);
export const hex = (d: Uint8Array): string => Buffer.from(d).toString('hex');
export const NAME = new Map([
  [hex(sha256(A)), 'A'],
  [hex(sha256(B)), 'B'],
]);

export function chip(seed = 1, tornWrite: 'prefix' | 'scatter' = 'prefix'): { flash: MemoryFlash; layout: FlashLayout } {
  // A 256-byte erase block holds only two 96-byte boot records: the boot log changes pages constantly.
  const flash = new MemoryFlash({ size: 24 * EBS, eraseBlockSize: EBS, writeAlignment: 8, random: mulberry32(seed), tornWrite });
  return { flash, layout: createLayout(flash, { slotSize: 6 * EBS }) };
}

export async function factory(seed = 1, tornWrite: 'prefix' | 'scatter' = 'prefix'): Promise<{ flash: MemoryFlash; layout: FlashLayout }> {
  const c = chip(seed, tornWrite);
  await installFactoryImage(c.flash, c.layout, A);
  return c;
}

/** Checks every boot result: the running image is A or B and the primary slot really holds it. */
export async function checkBoot(flash: MemoryFlash, layout: FlashLayout, r: BootResult): Promise<string> {
  const name = NAME.get(hex(r.image.digest));
  expect(name).toBeDefined();
  expect(hex(await hashArea(flash, layout.primary, r.image.size))).toBe(hex(r.image.digest));
  if (r.mode === 'test') expect(name).toBe('B');
  if (r.mode === 'reverted') expect(name).toBe('A');
  return name!;
}

/** What the device did, for assertions after a run. */
export interface Trace {
  boots: { name: string; mode: string }[];
  confirmStarted: boolean;
  confirmDone: boolean;
  cutInConfirm: boolean;
}

/**
 * A device's life: boot; on A (never updated) write B and request a test
 * boot; on B in test mode confirm (plan 'confirm') or just reboot (plan
 * 'no-confirm'). Returns the final image name. POWER_CUT propagates.
 */
export async function lifecycle(flash: MemoryFlash, layout: FlashLayout, plan: 'confirm' | 'no-confirm', trace: Trace): Promise<string> {
  for (let i = 0; i < 12; i++) {
    const r = await boot(flash, layout);
    const name = await checkBoot(flash, layout, r);
    trace.boots.push({ name, mode: r.mode });
    const s = r.state.components[0]!;
    if (name === 'B' && r.mode === 'confirmed') return 'B';
    if (name === 'A' && s.secondary !== null && NAME.get(hex(s.secondary.digest)) === 'B' && !r.state.pending) return 'A';
    if (name === 'A') {
      await writeImage(flash, layout.secondary, B);
      await requestTestBoot(flash, layout, { imageDigest: sha256(B), size: B.length });
    } else if (plan === 'confirm') {
      trace.confirmStarted = true;
      try {
        await confirm(flash, layout);
      } catch (e) {
        if (isCoapfwError(e, 'POWER_CUT')) trace.cutInConfirm = true;
        throw e;
      }
      trace.confirmDone = true;
    }
  }
  throw new Error('device did not settle in 12 boots');
}

export function newTrace(): Trace {
  return { boots: [], confirmStarted: false, confirmDone: false, cutInConfirm: false };
}
