import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { suffixArray } from '../../src/delta/suffix-array.js';

/** The suffix array by sorting, the empty suffix first: the oracle. */
function naive(s: Uint8Array): number[] {
  const idx = Array.from({ length: s.length + 1 }, (_, i) => i);
  return idx.sort((a, b) => Buffer.compare(Buffer.from(s.subarray(a)), Buffer.from(s.subarray(b))));
}

describe('suffixArray (SA-IS)', () => {
  it('equals the sorted suffixes over small alphabets (deep recursion) and all bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 256 }), fc.array(fc.nat(), { maxLength: 120 }), (k, xs) => {
        const s = Uint8Array.from(xs.map((x) => x % k));
        expect(Array.from(suffixArray(s))).toEqual(naive(s));
      }),
      { numRuns: 600 },
    );
  });
  it('handles the empty input, one byte, and long runs', () => {
    expect(Array.from(suffixArray(new Uint8Array(0)))).toEqual([0]);
    expect(Array.from(suffixArray(new Uint8Array([7])))).toEqual([1, 0]);
    const run = new Uint8Array(5000).fill(0xaa);
    expect(Array.from(suffixArray(run))).toEqual(Array.from({ length: 5001 }, (_, i) => 5000 - i));
  });
});
