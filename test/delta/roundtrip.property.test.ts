import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyDelta, createDelta } from '../../src/delta/index.js';
import { noise, pairs, toyExecutable } from './helpers.js';

const eq = (x: Uint8Array, y: Uint8Array): boolean => Buffer.from(x).equals(Buffer.from(y));

describe('delta round trip: apply(diff(a, b), a) = b', () => {
  it('for random, empty, edited and toy-executable pairs, any frame size, both codecs, any push split', async () => {
    await fc.assert(
      fc.asyncProperty(
        pairs,
        fc.integer({ min: 8, max: 13 }),
        fc.constantFrom('deflate' as const, 'none' as const),
        fc.integer({ min: 1, max: 2000 }),
        async ({ a, b }, frameLog, compression, pushSize) => {
          const delta = createDelta(a, b, { frameSize: 1 << frameLog, compression });
          const r = await applyDelta(delta, a, { pushSize, expectTargetSize: b.length });
          expect(eq(r.target, b)).toBe(true);
        },
      ),
      { numRuns: 250 },
    );
  });

  it('the identical image costs almost nothing, and a small edit little', async () => {
    const a = noise(100_000, 5);
    expect(createDelta(a, a).length).toBeLessThan(84 + 25 * 12); // 25 frames of one ADD each
    const b = a.slice();
    b.set(noise(100, 9), 50_000);
    const d = createDelta(a, b);
    expect(d.length).toBeLessThan(1000);
    expect(eq((await applyDelta(d, a)).target, b)).toBe(true);
  });

  it('a toy executable whose addresses all shifted compresses far below its size and below gzip', async () => {
    const a = toyExecutable(200_000, 3);
    const b = toyExecutable(200_000, 3, 1, 1000, 64);
    const d = createDelta(a, b);
    expect(eq((await applyDelta(d, a)).target, b)).toBe(true);
    const { gzipSync } = await import('node:zlib');
    expect(d.length).toBeLessThan(gzipSync(b, { level: 9 }).length / 4);
  });
});
