/** readFileBounded: the size bound for regular files, devices and directories; fileError names the file. */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileError, readFileBounded } from '../../src/bounded-read.js';
import { parseBlockSize } from '../../src/codec/block.js';
import { isCoapfwError } from '../../src/errors.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-bounded-'));
  await writeFile(join(dir, 'ten'), '0123456789');
  await writeFile(join(dir, 'big'), new Uint8Array(200_000).fill(1));
  await mkdir(join(dir, 'sub'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readFileBounded', () => {
  it('reads a file up to and at the bound, and refuses one byte more', async () => {
    expect(new TextDecoder().decode(await readFileBounded(join(dir, 'ten'), 10))).toBe('0123456789');
    expect((await readFileBounded(join(dir, 'big'), 200_000)).length).toBe(200_000);
    await expect(readFileBounded(join(dir, 'ten'), 9, 'key file')).rejects.toThrow(/ten: larger than 9 bytes, the limit for a key file$/);
  });

  it('stops reading an endless device at the bound', async () => {
    const started = performance.now();
    const e = await readFileBounded('/dev/zero', 100_000, 'envelope').catch((x: unknown) => x);
    expect(isCoapfwError(e, 'TOO_LARGE')).toBe(true);
    expect(performance.now() - started).toBeLessThan(2000);
    expect((await readFileBounded('/dev/null', 10)).length).toBe(0);
  });

  it('names a directory and a missing file', async () => {
    await expect(readFileBounded(join(dir, 'sub'), 10, 'image')).rejects.toThrow(/sub: is a directory, expected an image$/);
    const e = await readFileBounded(join(dir, 'nope'), 10).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'IO_ERROR') && e.path).toBe(join(dir, 'nope'));
    expect((e as Error).message).toBe(`${join(dir, 'nope')}: no such file or directory`);
  });

  it('fileError keeps anything that is not an errno error', () => {
    const plain = new Error('x');
    expect(fileError(plain, 'f')).toBe(plain);
  });
});

describe('parseBlockSize', () => {
  it('accepts the seven sizes as text or number and names the option otherwise', () => {
    expect(['16', '32', '64', '128', '256', '512', '1024'].map((s) => parseBlockSize(s))).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(parseBlockSize(512)).toBe(5);
    for (const bad of ['100', '2048', '0', '-16', '1e3', '', 'abc']) {
      expect(() => parseBlockSize(bad, '--block-size')).toThrow(/^--block-size: expected 16, 32, 64, 128, 256, 512 or 1024, got /);
    }
  });
});
