import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { boot, confirm, readBootState, requestTestBoot } from '../../src/device/boot.js';
import { decodeBootState, encodeBootState, type BootState } from '../../src/device/boot-state.js';
import { hashArea, writeImage } from '../../src/flash/image.js';
import { A, B, EBS, checkBoot, chip, factory, hex, image } from './boot-helpers.js';

describe('boot model: test / confirm / revert', () => {
  it('refuses to boot a chip without a factory image', async () => {
    const { flash, layout } = chip();
    await expect(boot(flash, layout)).rejects.toMatchObject({ code: 'NO_BOOTABLE_IMAGE' });
    expect(await readBootState(flash, layout)).toBeUndefined();
  });

  it('boots the factory image confirmed, with nothing to do and no flash writes', async () => {
    const { flash, layout } = await factory();
    const ops = flash.ops;
    const r = await boot(flash, layout);
    expect(await checkBoot(flash, layout, r)).toBe('A');
    expect(r.mode).toBe('confirmed');
    expect(r.actions).toEqual([]);
    expect(flash.ops).toBe(ops);
    expect(await confirm(flash, layout)).toBe(false);
  });

  it('installs a test image, keeps it once confirmed', async () => {
    const { flash, layout } = await factory();
    await writeImage(flash, layout.secondary, B);
    await requestTestBoot(flash, layout, { imageDigest: sha256(B), size: B.length });
    const r1 = await boot(flash, layout);
    expect([await checkBoot(flash, layout, r1), r1.mode, r1.actions]).toEqual(['B', 'test', ['installed']]);
    // the previous image moved to the secondary slot, intact
    expect(hex(await hashArea(flash, layout.secondary, A.length))).toBe(hex(sha256(A)));
    expect(r1.state.primaryMode).toBe('testing');
    expect(await confirm(flash, layout)).toBe(true);
    for (let i = 0; i < 2; i++) {
      const r = await boot(flash, layout);
      expect([await checkBoot(flash, layout, r), r.mode, r.actions]).toEqual(['B', 'confirmed', []]);
    }
  });

  it('reverts a test image that is not confirmed by the next boot', async () => {
    const { flash, layout } = await factory();
    await writeImage(flash, layout.secondary, B);
    await requestTestBoot(flash, layout, { imageDigest: sha256(B), size: B.length });
    expect((await boot(flash, layout)).mode).toBe('test');
    const r2 = await boot(flash, layout);
    expect([await checkBoot(flash, layout, r2), r2.mode, r2.actions]).toEqual(['A', 'reverted', ['reverted']]);
    expect(hex(r2.state.components[0]!.secondary!.digest)).toBe(hex(sha256(B)));
    expect(hex(await hashArea(flash, layout.secondary, B.length))).toBe(hex(sha256(B)));
    const r3 = await boot(flash, layout);
    expect([await checkBoot(flash, layout, r3), r3.mode]).toEqual(['A', 'confirmed']);
    // and a new update can be requested afterwards
    await requestTestBoot(flash, layout, { imageDigest: sha256(B), size: B.length });
    expect((await boot(flash, layout)).mode).toBe('test');
  });

  it('checks requests: digest, size, state', async () => {
    const { flash, layout } = await factory();
    await writeImage(flash, layout.secondary, B);
    await expect(requestTestBoot(flash, layout, { imageDigest: sha256(A), size: B.length })).rejects.toMatchObject({
      code: 'DIGEST_MISMATCH',
    });
    await expect(requestTestBoot(flash, layout, { imageDigest: sha256(B), size: 7 * EBS })).rejects.toMatchObject({
      code: 'IMAGE_TOO_LARGE',
    });
    await expect(requestTestBoot(flash, layout, { imageDigest: new Uint8Array(31), size: 1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await requestTestBoot(flash, layout, { imageDigest: sha256(B), size: B.length });
    await boot(flash, layout);
    // running a test image: the secondary holds the fallback, no new request allowed
    await expect(requestTestBoot(flash, layout, { imageDigest: sha256(A), size: A.length })).rejects.toMatchObject({
      code: 'BOOT_STATE',
    });
  });

  it('drops a request whose secondary image was damaged before the reboot', async () => {
    const { flash, layout } = await factory();
    await writeImage(flash, layout.secondary, B);
    await requestTestBoot(flash, layout, { imageDigest: sha256(B), size: B.length });
    await flash.erase(layout.secondary.offset + EBS, EBS);
    const r = await boot(flash, layout);
    expect([await checkBoot(flash, layout, r), r.mode, r.actions]).toEqual(['A', 'confirmed', ['secondary-rejected']]);
    expect(r.state.pending).toBe(false);
  });

  it('never runs a primary image that does not verify', async () => {
    const { flash, layout } = await factory();
    await flash.erase(layout.primary.offset, EBS);
    await expect(boot(flash, layout)).rejects.toMatchObject({ code: 'NO_BOOTABLE_IMAGE' });
  });

  it('keeps running the test image when the fallback no longer verifies', async () => {
    const { flash, layout } = await factory();
    await writeImage(flash, layout.secondary, B);
    await requestTestBoot(flash, layout, { imageDigest: sha256(B), size: B.length });
    await boot(flash, layout);
    await flash.erase(layout.secondary.offset, EBS); // damage A in the secondary
    const r = await boot(flash, layout);
    expect([await checkBoot(flash, layout, r), r.mode, r.actions]).toEqual(['B', 'test', ['revert-impossible']]);
  });

  it('swaps images of any size, including an empty one and a full slot', async () => {
    for (const [a, b] of [
      [image(0, 5), image(6 * EBS, 6)],
      [image(6 * EBS, 7), image(1, 8)],
    ] as const) {
      const { flash, layout } = chip();
      const { installFactoryImage } = await import('../../src/device/boot.js');
      await installFactoryImage(flash, layout, a);
      await writeImage(flash, layout.secondary, b);
      await requestTestBoot(flash, layout, { imageDigest: sha256(b), size: b.length });
      const r = await boot(flash, layout);
      expect(hex(r.image.digest)).toBe(hex(sha256(b)));
      expect(hex(await hashArea(flash, layout.primary, b.length))).toBe(hex(sha256(b)));
      expect(hex(await hashArea(flash, layout.secondary, a.length))).toBe(hex(sha256(a)));
      const back = await boot(flash, layout);
      expect(back.mode).toBe('reverted');
      expect(hex(await hashArea(flash, layout.primary, a.length))).toBe(hex(sha256(a)));
    }
  });
});

describe('boot record encoding', () => {
  it('round-trips and rejects impossible values', () => {
    const s: BootState = {
      components: [{ primary: { size: 700, digest: sha256(A) }, secondary: null }],
      primaryMode: 'testing',
      pending: false,
      set: [0],
      swap: { kind: 'revert', part: 0, blocks: 4, index: 3, step: 2 },
    };
    const p = encodeBootState(s);
    expect(p.length).toBe(84);
    expect(decodeBootState(p)).toEqual(s);
    const bad = p.slice();
    bad[0] = 3;
    expect(() => decodeBootState(bad)).toThrow(expect.objectContaining({ code: 'JOURNAL_CORRUPT' }));
    const badIndex = encodeBootState({ ...s, swap: { kind: 'install', part: 0, blocks: 2, index: 2, step: 0 } });
    expect(() => decodeBootState(badIndex)).toThrow(/index/);
  });
});

describe('boot model on a FileFlash (restart = reopen the file)', () => {
  it('installs, reverts after an unconfirmed boot, across process-like restarts', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { FileFlash } = await import('../../src/flash/file.js');
    const { createLayout } = await import('../../src/flash/layout.js');
    const { installFactoryImage } = await import('../../src/device/boot.js');
    const dir = await mkdtemp(join(tmpdir(), 'coapfw-boot-'));
    const opts = { size: 24 * EBS, eraseBlockSize: EBS, writeAlignment: 8 };
    const path = join(dir, 'chip.bin');
    const session = async <T>(fn: (f: InstanceType<typeof FileFlash>, l: ReturnType<typeof createLayout>) => Promise<T>): Promise<T> => {
      const f = await FileFlash.open(path, opts);
      try {
        return await fn(f, createLayout(f, { slotSize: 6 * EBS }));
      } finally {
        await f.close();
      }
    };
    try {
      await session(async (f, l) => {
        await installFactoryImage(f, l, A);
        await writeImage(f, l.secondary, B);
        await requestTestBoot(f, l, { imageDigest: sha256(B), size: B.length });
      });
      const r1 = await session((f, l) => boot(f, l));
      expect([hex(r1.image.digest), r1.mode]).toEqual([hex(sha256(B)), 'test']);
      const r2 = await session((f, l) => boot(f, l));
      expect([hex(r2.image.digest), r2.mode]).toEqual([hex(sha256(A)), 'reverted']);
      const r3 = await session(async (f, l) => {
        const r = await boot(f, l);
        expect(hex(await hashArea(f, l.primary, A.length))).toBe(hex(sha256(A)));
        return r;
      });
      expect(r3.mode).toBe('confirmed');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
