/**
 * The boot model with several components: a set is requested, swapped in,
 * confirmed and reverted as one; one image that does not verify drops the
 * whole request; the record format for N components round-trips.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { boot, confirm, requestTestBoot } from '../../src/device/boot.js';
import { bootPayloadSize, decodeBootState, encodeBootState, runningSetDigest, setDigest, type BootState } from '../../src/device/boot-state.js';
import { writeImage } from '../../src/flash/image.js';
import { createLayout } from '../../src/flash/layout.js';
import { hex } from './update-helpers.js';
import { A0, A1, B0, B1, board, EBS, ID0, ID1 } from './multi-helpers.js';

const names = (r: { images: readonly ({ digest: Uint8Array } | null)[] }): string[] =>
  r.images.map((i) => (i === null ? '-' : ({ [hex(sha256(A0))]: 'A0', [hex(sha256(A1))]: 'A1', [hex(sha256(B0))]: 'B0', [hex(sha256(B1))]: 'B1' } as Record<string, string>)[hex(i.digest)] ?? '?'));

async function staged() {
  const dev = await board();
  await writeImage(dev.flash, dev.layout.components[0]!.secondary, B0);
  await writeImage(dev.flash, dev.layout.components[1]!.secondary, B1);
  return dev;
}
const request = { images: [{ component: 1, imageDigest: sha256(B1), size: B1.length }, { component: 0, imageDigest: sha256(B0), size: B0.length }] };

describe('boot model: a set of components', () => {
  it('swaps the whole set in as a test set, keeps it once confirmed', async () => {
    const { flash, layout } = await staged();
    await requestTestBoot(flash, layout, request);
    const r1 = await boot(flash, layout);
    expect([r1.mode, r1.actions, names(r1)]).toEqual(['test', ['installed'], ['B0', 'B1']]);
    expect(r1.state.set).toEqual([0, 1]);
    expect(await confirm(flash, layout)).toBe(true);
    const r2 = await boot(flash, layout);
    expect([r2.mode, names(r2)]).toEqual(['confirmed', ['B0', 'B1']]);
    expect(hex(runningSetDigest(r2.state)!)).toBe(hex(setDigest([sha256(B0), sha256(B1)])));
  });

  it('reverts the whole set when the test set is not confirmed', async () => {
    const { flash, layout } = await staged();
    await requestTestBoot(flash, layout, request);
    await boot(flash, layout);
    const r = await boot(flash, layout);
    expect([r.mode, r.actions, names(r)]).toEqual(['reverted', ['reverted'], ['A0', 'A1']]);
  });

  it('one image of the set that does not verify at boot drops the request: nothing is swapped', async () => {
    const { flash, layout } = await staged();
    await requestTestBoot(flash, layout, request);
    await flash.erase(layout.components[1]!.secondary.offset, EBS); // component 1's new image is damaged after the request
    const ops = flash.ops;
    const r = await boot(flash, layout);
    expect([r.mode, r.actions, names(r)]).toEqual(['confirmed', ['secondary-rejected'], ['A0', 'A1']]);
    expect(flash.ops - ops).toBe(1); // one boot record, no swap
  });

  it('requestTestBoot refuses a damaged image, an unknown component and a repeated one', async () => {
    const { flash, layout } = await staged();
    await expect(requestTestBoot(flash, layout, { images: [{ component: 0, imageDigest: sha256(B1), size: B1.length }] })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
    await expect(requestTestBoot(flash, layout, { images: [{ component: 2, imageDigest: sha256(B1), size: B1.length }] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(requestTestBoot(flash, layout, { images: [request.images[1]!, request.images[1]!] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('layouts need distinct ids for several components; boot records of N components round-trip', () => {
    const g = { size: 64 * EBS, eraseBlockSize: EBS, writeAlignment: 4 };
    expect(() => createLayout(g, { components: [{ id: ID0, slotSize: EBS }, { slotSize: EBS }] })).toThrow(/needs an id/);
    expect(() => createLayout(g, { components: [{ id: ID0, slotSize: EBS }, { id: ID0, slotSize: EBS }] })).toThrow(/used twice/);
    expect(() => createLayout(g, { slotSize: EBS, components: [{ id: ID1, slotSize: EBS }] })).toThrow(/either/);
    const s: BootState = {
      components: [{ primary: { size: 9, digest: sha256(A0) }, secondary: null }, { primary: null, secondary: { size: 7, digest: sha256(B1) } }, { primary: null, secondary: null }],
      primaryMode: 'test-pending',
      pending: false,
      set: [1, 2],
      swap: { kind: 'install', part: 1, blocks: 3, index: 2, step: 1 },
    };
    const p = encodeBootState(s);
    expect(p.length).toBe(bootPayloadSize(3));
    expect(decodeBootState(p, 3)).toEqual(s);
    const bad = p.slice();
    bad[p.length - 3] = 0b1000; // a set bit for a component the layout does not have
    expect(() => decodeBootState(bad, 3)).toThrow(/set out of range/);
  });
});
