import { sha256 } from '@noble/hashes/sha2.js';
import { describe, expect, it } from 'vitest';
import { hashArea, resumeOffset, writeImage, writeImageChunk } from '../../src/flash/image.js';
import { checkLayout, createLayout, layoutSize } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';

const EBS = 1024;
const geometry = { size: 32 * EBS, eraseBlockSize: EBS, writeAlignment: 8 };

function image(n: number, seed = 1): Uint8Array {
  const r = mulberry32(seed);
  return new Uint8Array(n).map(() => Math.floor(r() * 256));
}

describe('createLayout', () => {
  it('places slots, scratch and the two logs back to back on erase-block boundaries', () => {
    const l = createLayout(geometry, { slotSize: 8 * EBS, journalBlocks: 3, base: 2 * EBS });
    expect(l.primary).toEqual({ offset: 2 * EBS, size: 8 * EBS });
    expect(l.secondary).toEqual({ offset: 10 * EBS, size: 8 * EBS });
    expect(l.scratch).toEqual({ offset: 18 * EBS, size: EBS });
    expect(l.bootLog).toEqual({ offset: 19 * EBS, size: 2 * EBS });
    expect(l.journal).toEqual({ offset: 21 * EBS, size: 3 * EBS });
    expect(layoutSize(geometry, { slotSize: 8 * EBS, journalBlocks: 3 })).toBe(22 * EBS);
    expect(() => checkLayout(new MemoryFlash(geometry), l)).not.toThrow();
  });

  it('rejects sizes that do not fit or are not aligned', () => {
    expect(() => createLayout(geometry, { slotSize: 100 })).toThrow(/slotSize/);
    expect(() => createLayout(geometry, { slotSize: 16 * EBS })).toThrow(expect.objectContaining({ code: 'FLASH_RANGE' }));
    expect(() => createLayout(geometry, { slotSize: EBS, base: 10 })).toThrow(/base/);
    expect(() => createLayout(geometry, { slotSize: EBS, bootLogBlocks: 1 })).toThrow(/bootLogBlocks/);
    const l = createLayout(geometry, { slotSize: EBS });
    expect(() => checkLayout({ ...geometry, writeAlignment: 4 }, l)).toThrow(/alignment/);
    expect(() => checkLayout({ ...geometry, size: 4 * EBS }, l)).toThrow(expect.objectContaining({ code: 'FLASH_RANGE' }));
  });
});

describe('image helpers', () => {
  const layout = createLayout(geometry, { slotSize: 8 * EBS });

  it('writes a download chunk by chunk, erasing each block on first touch, and hashes it', async () => {
    const flash = new MemoryFlash(geometry);
    // old contents in the slot: writes must still succeed
    await writeImage(flash, layout.secondary, new Uint8Array(8 * EBS));
    const img = image(5000 + 3);
    for (let off = 0; off < img.length; off += 256) await writeImageChunk(flash, layout.secondary, off, img.subarray(off, off + 256));
    expect(await hashArea(flash, layout.secondary, img.length)).toEqual(sha256(img));
    // padding after the last (unaligned) chunk is erased
    expect([...(await flash.read(layout.secondary.offset + img.length, 5))]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff]);
  });

  it('resumes from the erase block of an interrupted chunk, redoing only that block', async () => {
    const flash = new MemoryFlash(geometry);
    const img = image(4 * EBS, 2);
    for (let off = 0; off < 2 * EBS + 512; off += 256) await writeImageChunk(flash, layout.secondary, off, img.subarray(off, off + 256));
    // a torn write in the middle of block 2
    flash.cutAfter(0);
    await expect(writeImageChunk(flash, layout.secondary, 2 * EBS + 512, img.subarray(2 * EBS + 512, 2 * EBS + 768))).rejects.toMatchObject({
      code: 'POWER_CUT',
    });
    flash.powerOn();
    const from = resumeOffset(flash, 2 * EBS + 512);
    expect(from).toBe(2 * EBS);
    const erasesBefore = flash.stats.erases;
    for (let off = from; off < img.length; off += 256) await writeImageChunk(flash, layout.secondary, off, img.subarray(off, off + 256));
    expect(flash.stats.erases - erasesBefore).toBe(2);
    expect(await hashArea(flash, layout.secondary, img.length)).toEqual(sha256(img));
  });

  it('handles chunks larger than an erase block and refuses to overflow the slot', async () => {
    const flash = new MemoryFlash(geometry);
    const img = image(3 * EBS + 100, 3);
    await writeImageChunk(flash, layout.primary, 0, img);
    expect(await hashArea(flash, layout.primary, img.length)).toEqual(sha256(img));
    await expect(writeImageChunk(flash, layout.primary, 8 * EBS - 8, new Uint8Array(16))).rejects.toMatchObject({
      code: 'IMAGE_TOO_LARGE',
    });
    await expect(writeImageChunk(flash, layout.primary, 3 * EBS + 96, new Uint8Array(5))).rejects.toMatchObject({
      code: 'FLASH_NOT_ERASED',
    });
    await expect(hashArea(flash, layout.primary, 9 * EBS)).rejects.toMatchObject({ code: 'IMAGE_TOO_LARGE' });
    await expect(writeImageChunk(flash, layout.primary, -8, new Uint8Array(8))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
