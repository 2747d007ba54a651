import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { buildBlockDigests, leafHash } from '../../src/suit/block-digests.js';
import { BlockVerifier } from '../../src/suit/block-verifier.js';
import { mth } from './merkle-oracle.js';
import { hex } from './helpers.js';

const params = fc.record({
  image: fc.uint8Array({ minLength: 0, maxLength: 3000 }),
  szx: fc.integer({ min: 0, max: 6 }),
  pageLog: fc.integer({ min: 0, max: 5 }),
});

function failure(f: () => void): { code: string; block: number | undefined } | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (!isCoapfwError(e)) throw e;
    return { code: e.code, block: e.block };
  }
}

describe('block digests: properties', () => {
  it('the root is the RFC 9162 MTH over the block leaves, for any size, block size and page size', () => {
    fc.assert(
      fc.property(params, ({ image, szx, pageLog }) => {
        const bs = 16 << szx;
        const { info } = buildBlockDigests(image, { blockSize: bs, pageLeaves: 1 << pageLog });
        const leaves = [];
        for (let o = 0; o < image.length; o += bs) leaves.push(leafHash(image.subarray(o, o + bs)));
        expect(hex(info.root)).toBe(hex(mth(leaves)));
      }),
      { numRuns: 300 },
    );
  });

  it('a flipped bit in any block is refused at that block, and every other block still passes, in a random order', () => {
    fc.assert(
      fc.property(params.filter((p) => p.image.length > 0), fc.nat(), fc.integer({ min: 0, max: 7 }), fc.nat(), ({ image, szx, pageLog }, pos, bit, seed) => {
        const bs = 16 << szx;
        const { info, resource } = buildBlockDigests(image, { blockSize: bs, pageLeaves: 1 << pageLog });
        const v = new BlockVerifier(info);
        v.acceptResource(resource);
        const bad = image.slice();
        const at = pos % image.length;
        bad[at]! ^= 1 << bit;
        const n = v.layout.blocks;
        const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => ((a * 2654435761 + seed) >>> 0) - ((b * 2654435761 + seed) >>> 0));
        for (const i of order) {
          const r = failure(() => v.checkBlock(i, bad.subarray(i * bs, (i + 1) * bs)));
          if (i === Math.floor(at / bs)) expect(r).toEqual({ code: 'DIGEST_MISMATCH', block: i });
          else expect(r).toBeUndefined();
        }
      }),
      { numRuns: 300 },
    );
  });

  it('a flipped bit anywhere in the digest resource is refused at its page (or at the top list)', () => {
    fc.assert(
      fc.property(params.filter((p) => p.image.length > 0), fc.nat(), fc.integer({ min: 0, max: 7 }), ({ image, szx, pageLog }, pos, bit) => {
        const { info, resource } = buildBlockDigests(image, { blockSize: 16 << szx, pageLeaves: 1 << pageLog });
        const v = new BlockVerifier(info);
        const bad = resource.slice();
        const at = pos % resource.length;
        bad[at]! ^= 1 << bit;
        const r = failure(() => v.acceptResource(bad));
        const page = at < v.layout.topOffset ? Math.floor(at / v.layout.pageBytes) : undefined;
        expect(r).toEqual({ code: 'DIGEST_MISMATCH', block: page });
      }),
      { numRuns: 300 },
    );
  });
});
