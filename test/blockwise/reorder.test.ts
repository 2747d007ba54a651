import { concatBytes } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { ReorderBuffer } from '../../src/blockwise/reorder.js';
import { isCoapfwError } from '../../src/errors.js';

const BS = 16;
const body = new Uint8Array(10 * BS - 5).map((_, i) => (i * 7 + 3) & 0xff);
const block = (n: number): Uint8Array => body.subarray(n * BS, Math.min(body.length, (n + 1) * BS));

function collector(): { out: Uint8Array[]; write: (d: Uint8Array) => Promise<void> } {
  const out: Uint8Array[] = [];
  return { out, write: async (d) => void out.push(d.slice()) };
}

describe('ReorderBuffer', () => {
  it('writes blocks arriving out of order in body order, duplicates ignored', async () => {
    const c = collector();
    const r = new ReorderBuffer({ maxBlocks: 10, write: c.write });
    for (const n of [3, 1, 0, 2, 1, 9, 5, 4, 8, 6, 7, 0]) await r.push(n * BS, block(n));
    await r.finish(body.length);
    expect(concatBytes(...c.out)).toEqual(body);
    expect(r.written).toBe(body.length);
    expect(r.waiting).toBe(0);
  });

  it('holds only what lies past the hole, and writes it once the hole fills', async () => {
    const c = collector();
    const r = new ReorderBuffer({ maxBlocks: 4, write: c.write });
    await r.push(0, block(0));
    for (const n of [2, 3, 4]) await r.push(n * BS, block(n));
    expect(r.written).toBe(BS);
    expect(r.waiting).toBe(3);
    expect(r.waitingBytes).toBe(3 * BS);
    await r.push(BS, block(1));
    expect(r.written).toBe(5 * BS);
    expect(r.waiting).toBe(0);
  });

  it('refuses a block past the bound with LIMIT_EXCEEDED instead of growing', async () => {
    const r = new ReorderBuffer({ maxBlocks: 3, write: () => undefined });
    for (const n of [1, 2, 3]) await r.push(n * BS, block(n));
    const e = await r.push(4 * BS, block(4)).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'LIMIT_EXCEEDED')).toBe(true);
    expect(r.waiting).toBe(3);
    // The missing block still goes through: the bound is on blocks waiting, not on progress.
    await r.push(0, block(0));
    expect(r.written).toBe(4 * BS);
  });

  it('a hole that never fills fails finish with BLOCK_OUT_OF_ORDER naming the offset', async () => {
    const c = collector();
    const r = new ReorderBuffer({ maxBlocks: 10, write: c.write });
    for (const n of [0, 1, 3, 4]) await r.push(n * BS, block(n));
    const e = await r.finish(5 * BS).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'BLOCK_OUT_OF_ORDER')).toBe(true);
    expect((e as Error).message).toContain(`bytes from ${2 * BS} missing`);
    expect(concatBytes(...c.out)).toEqual(body.subarray(0, 2 * BS));
  });

  it('a failing writer rejects the push and every later one', async () => {
    const r = new ReorderBuffer({ maxBlocks: 10, write: () => Promise.reject(new Error('disk full')) });
    await expect(r.push(0, block(0))).rejects.toThrow('disk full');
    await expect(r.push(BS, block(1))).rejects.toThrow('disk full');
    await expect(r.finish(2 * BS)).rejects.toThrow('disk full');
  });

  it('validates its bound and offsets', async () => {
    expect(() => new ReorderBuffer({ maxBlocks: 0, write: () => undefined })).toThrow(/maxBlocks/);
    const r = new ReorderBuffer({ maxBlocks: 1, write: () => undefined });
    await expect(r.push(-1, block(0))).rejects.toThrow(/offset/);
  });
});
