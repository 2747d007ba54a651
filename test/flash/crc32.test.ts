import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/flash/crc32.js';
import { mulberry32 } from '../../src/flash/prng.js';

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('crc32', () => {
  it('matches the standard check values', () => {
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(ascii('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });

  it('agrees with zlib.crc32 on random inputs', () => {
    const zcrc = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
    expect(typeof zcrc).toBe('function');
    const rnd = mulberry32(7);
    for (let n = 0; n < 200; n++) {
      const buf = new Uint8Array(n * 3).map(() => Math.floor(rnd() * 256));
      expect(crc32(buf)).toBe(zcrc!(buf));
    }
  });
});

describe('mulberry32', () => {
  it('is reproducible from its seed and stays in [0, 1)', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const xs = Array.from({ length: 100 }, () => a());
    expect(xs).toEqual(Array.from({ length: 100 }, () => b()));
    expect(xs).not.toEqual(Array.from({ length: 100 }, () => c()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});
