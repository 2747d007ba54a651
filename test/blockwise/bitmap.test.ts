import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BlockBitmap, blockCount, MAX_BLOCKS } from '../../src/blockwise/bitmap.js';

describe('BlockBitmap', () => {
  it('counts, ignores duplicates and reports completion', () => {
    const b = new BlockBitmap(3);
    expect(b.set(1)).toBe(true);
    expect(b.set(1)).toBe(false);
    expect(b.count).toBe(1);
    b.set(0);
    b.set(2);
    expect(b.complete).toBe(true);
    expect(b.nextMissing()).toBe(-1);
  });

  it('rejects blocks outside the representation and sizes outside the NUM range', () => {
    const b = new BlockBitmap(40);
    expect(() => b.set(40)).toThrow(expect.objectContaining({ code: 'BLOCK_MISMATCH' }));
    expect(() => b.set(-1)).toThrow(expect.objectContaining({ code: 'BLOCK_MISMATCH' }));
    expect(b.has(40)).toBe(false);
    expect(() => new BlockBitmap(0)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new BlockBitmap(MAX_BLOCKS + 1)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('keeps every hole under sustained loss (a range table of four would not)', () => {
    const b = new BlockBitmap(1000);
    for (let n = 0; n < 1000; n++) if (n % 7 !== 3) b.set(n);
    const holes = b.missing(1000);
    expect(holes).toHaveLength(143);
    expect(holes.every((n) => n % 7 === 3)).toBe(true);
    expect(b.missingRanges(1000)).toHaveLength(143);
  });

  it('finds runs across word boundaries and honours limits', () => {
    const b = new BlockBitmap(100);
    for (let n = 0; n < 100; n++) if (n < 30 || (n >= 70 && n < 95)) b.set(n);
    expect(b.missingRanges(10)).toEqual([{ start: 30, end: 70 }, { start: 95, end: 100 }]);
    expect(b.missingRanges(1)).toEqual([{ start: 30, end: 70 }]);
    expect(b.missing(3, 60)).toEqual([60, 61, 62, 63, 64, 65, 66, 67, 68, 69].slice(0, 3));
    expect(b.missingIn(0, 40)).toBe(10);
    expect(b.nextReceived(31)).toBe(70);
  });

  it('blockCount: an empty body is one (empty) block', () => {
    expect(blockCount(0, 1024)).toBe(1);
    expect(blockCount(1024, 1024)).toBe(1);
    expect(blockCount(1025, 1024)).toBe(2);
  });

  it('agrees with a Set model on random sequences (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 300 }), fc.array(fc.nat(400)), fc.nat(300), (total, nums, from) => {
        const b = new BlockBitmap(total);
        const model = new Set<number>();
        for (const n of nums) {
          if (n >= total) continue;
          expect(b.set(n)).toBe(!model.has(n));
          model.add(n);
        }
        const missing = [...Array(total).keys()].filter((n) => !model.has(n));
        expect(b.count).toBe(model.size);
        expect(b.missing(total + 1)).toEqual(missing);
        expect(b.nextMissing(from)).toBe(missing.find((n) => n >= from) ?? -1);
        const flat = b.missingRanges(total + 1).flatMap((r) => Array.from({ length: r.end - r.start }, (_, i) => r.start + i));
        expect(flat).toEqual(missing);
        // Ranges are maximal: a received block separates consecutive ranges.
        const ranges = b.missingRanges(total + 1);
        for (let i = 1; i < ranges.length; i++) expect(ranges[i]!.start).toBeGreaterThan(ranges[i - 1]!.end);
      }),
      { numRuns: 300 },
    );
  });
});
