/**
 * File handles of the repository: concurrent cold reads share one open and
 * one disk read per chunk, handles are capped by `maxOpenFiles` (least
 * recently used idle one closed first, never one with a read in flight), and
 * `close()` closes everything that was opened. `open` is wrapped to count
 * opens, closes and reads.
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { FileRepository } from '../../src/server/files.js';

const track = vi.hoisted(() => ({
  opened: [] as string[],
  closed: [] as string[],
  reads: 0,
  /** Reads of paths containing "slow" wait for this. */
  gate: undefined as Promise<void> | undefined,
}));

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const open = async (path: string, flags?: string): Promise<FileHandle> => {
    const fh = await fs.open(path, flags);
    const name = String(path);
    track.opened.push(name);
    return new Proxy(fh, {
      get(target, prop) {
        if (prop === 'close') return async () => (track.closed.push(name), target.close());
        if (prop === 'read')
          return async (...args: Parameters<FileHandle['read']>) => {
            track.reads++;
            if (name.includes('slow') && track.gate) await track.gate;
            return (target.read as (...a: unknown[]) => unknown).apply(target, args);
          };
        const v = Reflect.get(target, prop) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  };
  return { ...fs, open, default: { ...fs, open } };
});

let dir: string;
const big = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7) & 0xff);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-handles-'));
  await writeFile(join(dir, 'big.bin'), big);
  for (let i = 0; i < 6; i++) await writeFile(join(dir, `f${i}.bin`), `file ${i}`);
  await writeFile(join(dir, 'slow.bin'), 'slow file');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  track.opened.length = 0;
  track.closed.length = 0;
  track.reads = 0;
  track.gate = undefined;
});

const openFds = () => track.opened.length - track.closed.length;

describe('file handles', () => {
  it('40 concurrent cold reads of one file open it once, and close() closes it', async () => {
    const repo = await FileRepository.open(dir, { cacheBytes: 0 });
    const e = repo.byRelativePath('big.bin')!;
    const indexOpens = track.opened.length;
    const slices = await Promise.all(Array.from({ length: 40 }, (_, i) => e.read(i * 1024, 1024)));
    slices.forEach((s, i) => expect(s).toEqual(big.subarray(i * 1024, (i + 1) * 1024)));
    expect(track.opened.length - indexOpens).toBe(1);
    expect(repo.openFiles).toBe(1);
    await repo.close();
    expect(openFds()).toBe(0);
    expect(repo.openFiles).toBe(0);
  });

  it('concurrent cold reads of the same chunk read the disk once', async () => {
    const repo = await FileRepository.open(dir);
    const e = repo.byRelativePath('big.bin')!;
    const before = track.reads;
    const slices = await Promise.all(Array.from({ length: 20 }, (_, i) => e.read(i * 64, 64)));
    slices.forEach((s, i) => expect(s).toEqual(big.subarray(i * 64, (i + 1) * 64)));
    expect(track.reads - before).toBe(1); // one 64 KiB chunk
    await repo.close();
  });

  it('keeps at most maxOpenFiles handles, closing the least recently used first', async () => {
    const repo = await FileRepository.open(dir, { maxOpenFiles: 2, cacheBytes: 0 });
    const read = async (name: string) => new TextDecoder().decode(await repo.byRelativePath(name)!.read(0, 100));
    for (let i = 0; i < 6; i++) {
      expect(await read(`f${i}.bin`)).toBe(`file ${i}`);
      expect(repo.openFiles).toBeLessThanOrEqual(2);
      expect(openFds()).toBe(repo.openFiles);
    }
    // f4 and f5 are open; touching f4 makes f5 the least recently used.
    await read('f4.bin');
    await read('f0.bin');
    const lastClosed = track.closed[track.closed.length - 1]!;
    expect(lastClosed.endsWith('f5.bin')).toBe(true);
    await repo.close();
    expect(openFds()).toBe(0);
  });

  it('never closes a handle with a read in flight', async () => {
    const repo = await FileRepository.open(dir, { maxOpenFiles: 1, cacheBytes: 0 });
    track.closed.length = track.opened.length = 0; // forget the handles used for hashing
    let release: () => void = () => {};
    track.gate = new Promise<void>((r) => (release = r));
    const pending = repo.byRelativePath('slow.bin')!.read(0, 100);
    for (let i = 0; i < 3; i++) await repo.byRelativePath(`f${i}.bin`)!.read(0, 100);
    expect(track.closed.some((p) => p.endsWith('slow.bin'))).toBe(false);
    release();
    expect(new TextDecoder().decode(await pending)).toBe('slow file');
    await repo.close();
    expect(openFds()).toBe(0);
  });
});
