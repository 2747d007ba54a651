import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';

const EBS = 256;
const chip = (opts: Partial<ConstructorParameters<typeof MemoryFlash>[0]> = {}): MemoryFlash =>
  new MemoryFlash({ size: 4 * EBS, eraseBlockSize: EBS, writeAlignment: 4, ...opts });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isCoapfwError(e)) return e.code;
    throw e;
  }
  return 'OK';
}

describe('MemoryFlash: NOR semantics', () => {
  it('starts erased, programs, reads back', async () => {
    const f = chip();
    expect((await f.read(0, f.size)).every((b) => b === 0xff)).toBe(true);
    await f.write(8, Uint8Array.of(1, 2, 3, 4));
    expect([...(await f.read(6, 8))]).toEqual([0xff, 0xff, 1, 2, 3, 4, 0xff, 0xff]);
  });

  it('refuses to program bytes that are not erased, even with the same value', async () => {
    const f = chip();
    await f.write(0, Uint8Array.of(0xf0, 0xff, 0xff, 0xff));
    expect(await code(f.write(0, Uint8Array.of(0xf0, 0xff, 0xff, 0xff)))).toBe('FLASH_NOT_ERASED');
    expect(await code(f.write(0, Uint8Array.of(0x00, 0, 0, 0)))).toBe('FLASH_NOT_ERASED');
    // a failed write changes nothing and is not counted
    expect([...(await f.read(0, 4))]).toEqual([0xf0, 0xff, 0xff, 0xff]);
    expect(f.ops).toBe(1);
  });

  it('erases whole blocks back to 0xFF and counts wear per block', async () => {
    const f = chip();
    await f.write(EBS - 4, new Uint8Array(8));
    await f.erase(0, EBS);
    expect((await f.read(0, EBS)).every((b) => b === 0xff)).toBe(true);
    expect([...(await f.read(EBS, 4))]).toEqual([0, 0, 0, 0]);
    await f.erase(EBS, 2 * EBS);
    expect([...f.eraseCounts]).toEqual([1, 1, 1, 0]);
    expect(f.stats).toMatchObject({ writes: 1, erases: 2, bytesWritten: 8, bytesErased: 3 * EBS });
    expect(f.ops).toBe(3);
  });

  it('checks alignment and range with typed errors', async () => {
    const f = chip();
    expect(await code(f.write(2, new Uint8Array(4)))).toBe('FLASH_ALIGNMENT');
    expect(await code(f.write(0, new Uint8Array(3)))).toBe('FLASH_ALIGNMENT');
    expect(await code(f.write(f.size - 4, new Uint8Array(8)))).toBe('FLASH_RANGE');
    expect(await code(f.erase(EBS / 2, EBS))).toBe('FLASH_ALIGNMENT');
    expect(await code(f.erase(0, EBS + 4))).toBe('FLASH_ALIGNMENT');
    expect(await code(f.erase(f.size, EBS))).toBe('FLASH_RANGE');
    expect(await code(f.read(-1, 2))).toBe('FLASH_RANGE');
    expect(await code(f.read(0, f.size + 1))).toBe('FLASH_RANGE');
    expect(await code(f.read(0.5, 1))).toBe('FLASH_RANGE');
    expect(await code(f.write(0, [1, 2, 3, 4] as unknown as Uint8Array))).toBe('INVALID_ARGUMENT');
    expect(f.ops).toBe(0);
  });

  it('rejects inconsistent geometry', () => {
    expect(() => chip({ eraseBlockSize: 100 })).toThrow(/power of two/);
    expect(() => chip({ writeAlignment: 512 })).toThrow(/writeAlignment/);
    expect(() => new MemoryFlash({ size: 1000, eraseBlockSize: 256 })).toThrow(/multiple/);
    expect(() => chip({ contents: new Uint8Array(3) })).toThrow(/contents/);
  });
});

describe('MemoryFlash: power cuts', () => {
  it('cuts the N-th operation, then stays dead until powerOn', async () => {
    const f = chip();
    f.cutAfter(2, { tornBytes: 0 });
    await f.write(0, new Uint8Array(4));
    await f.erase(EBS, EBS);
    expect(await code(f.write(4, new Uint8Array(4)))).toBe('POWER_CUT');
    expect(f.powered).toBe(false);
    expect(await code(f.read(0, 4))).toBe('POWER_CUT');
    expect(await code(f.erase(0, EBS))).toBe('POWER_CUT');
    f.powerOn();
    expect([...(await f.read(0, 8))]).toEqual([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
    expect(f.ops).toBe(3);
    // no further cut scheduled
    await f.write(4, new Uint8Array(4));
  });

  it('a torn write with tornBytes programs exactly that prefix', async () => {
    for (let n = 0; n <= 8; n++) {
      const f = chip();
      f.cutAfter(0, { tornBytes: n });
      expect(await code(f.write(0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8)))).toBe('POWER_CUT');
      f.reboot();
      const got = [...(await f.read(0, 8))];
      expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8].map((v, i) => (i < n ? v : 0xff)));
    }
  });

  it('a random torn write lands a prefix and one partially programmed byte, reproducibly', async () => {
    const data = new Uint8Array(64).fill(0x00);
    const runs: number[][] = [];
    for (const seed of [1, 1, 2]) {
      const f = chip({ random: mulberry32(seed) });
      f.cutAfter(0);
      expect(await code(f.write(0, data))).toBe('POWER_CUT');
      f.powerOn();
      const got = [...(await f.read(0, 64))];
      const firstFF = got.indexOf(0xff);
      const prefix = firstFF === -1 ? 64 : firstFF;
      // zeros, at most one partial byte, then untouched 0xFF
      expect(got.slice(0, Math.max(0, prefix - 1)).every((b) => b === 0)).toBe(true);
      expect(got.slice(prefix + 1).every((b) => b === 0xff)).toBe(true);
      runs.push(got);
    }
    expect(runs[0]).toEqual(runs[1]);
  });

  it("scatter mode lands a subset of bytes, AND-ed into the erased cells", async () => {
    const f = chip({ tornWrite: 'scatter', random: mulberry32(3) });
    const data = new Uint8Array(128).fill(0x0f);
    f.cutAfter(0);
    expect(await code(f.write(0, data))).toBe('POWER_CUT');
    f.powerOn();
    const got = await f.read(0, 128);
    // every byte is between "untouched" and "fully programmed" bitwise
    expect(got.every((b) => (b & 0x0f) === 0x0f)).toBe(true);
    const full = got.filter((b) => b === 0x0f).length;
    expect(full).toBeGreaterThan(0);
    expect(full).toBeLessThan(128);
  });

  it('a torn erase erases earlier blocks and leaves the cut block partially erased', async () => {
    const f = chip({ random: mulberry32(9) });
    for (let b = 0; b < 4; b++) await f.write(b * EBS, new Uint8Array(EBS));
    f.cutAfter(0);
    expect(await code(f.erase(0, 4 * EBS))).toBe('POWER_CUT');
    f.powerOn();
    const mem = await f.read(0, 4 * EBS);
    const blocks = [0, 1, 2, 3].map((b) => mem.subarray(b * EBS, (b + 1) * EBS));
    const cut = blocks.findIndex((blk) => !blk.every((x) => x === 0xff));
    expect(cut).toBeGreaterThanOrEqual(0);
    for (let b = 0; b < cut; b++) expect(blocks[b]!.every((x) => x === 0xff)).toBe(true);
    const erased = blocks[cut]!.filter((x) => x === 0xff).length;
    expect(erased).toBeGreaterThan(0);
    expect(erased).toBeLessThan(EBS);
    for (let b = cut + 1; b < 4; b++) expect(blocks[b]!.every((x) => x === 0)).toBe(true);
    expect(f.eraseCounts[cut]).toBe(1);
  });

  it('a torn erase with tornBytes erases exactly that prefix', async () => {
    const f = chip();
    await f.write(0, new Uint8Array(2 * EBS));
    f.cutAfter(0, { tornBytes: EBS + 10 });
    expect(await code(f.erase(0, 2 * EBS))).toBe('POWER_CUT');
    f.powerOn();
    const mem = await f.read(0, 2 * EBS);
    expect(mem.subarray(0, EBS + 10).every((x) => x === 0xff)).toBe(true);
    expect(mem.subarray(EBS + 10).every((x) => x === 0)).toBe(true);
  });

  it('cancelCut and cutAfter validation', async () => {
    const f = chip();
    f.cutAfter(0);
    f.cancelCut();
    await f.write(0, new Uint8Array(4));
    expect(() => f.cutAfter(-1)).toThrow(/>= 0/);
    const copy = new MemoryFlash({ size: f.size, eraseBlockSize: EBS, contents: f.snapshot() });
    expect([...(await copy.read(0, 5))]).toEqual([0, 0, 0, 0, 0xff]);
  });
});

describe('MemoryFlash.cutAt', () => {
  it('cuts at an absolute operation index', async () => {
    const f = chip();
    await f.write(0, new Uint8Array(4));
    expect(() => f.cutAt(0)).toThrow(/>= 1/);
    f.cutAt(2, { tornBytes: 4 });
    await f.write(4, new Uint8Array(4));
    await expect(f.write(8, new Uint8Array(8))).rejects.toMatchObject({ code: 'POWER_CUT' });
    f.powerOn();
    expect([...(await f.read(8, 8))]).toEqual([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  });
});
