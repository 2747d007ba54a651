/**
 * A directory swapped for a symlink between the scan's lstat and the open
 * must not let the server index a file outside its root. The race is made
 * deterministic by having lstat report the symlink as the directory it was.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import type * as FsPromises from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const swapped = new Set<string>();
vi.mock('node:fs/promises', async (importOriginal) => {
  const orig = await importOriginal<typeof FsPromises>();
  return {
    ...orig,
    // The scan saw a real directory here a moment ago.
    lstat: async (p: string) => {
      const st = await orig.lstat(p);
      if (!swapped.has(p)) return st;
      return Object.assign(Object.create(Object.getPrototypeOf(st)), st, { isDirectory: () => true, isSymbolicLink: () => false });
    },
  };
});

const { FileRepository } = await import('../../src/server/files.js');

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'coapfw-escape-'));
  await mkdir(join(base, 'root'));
  await mkdir(join(base, 'outside'));
  await writeFile(join(base, 'outside', 'secret'), 'TOP SECRET');
  await writeFile(join(base, 'root', 'ok.bin'), 'fine');
  await symlink(join(base, 'outside'), join(base, 'root', 'z'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('FileRepository and a directory swapped for a symlink', () => {
  it('does not index a file the open reached outside the root', async () => {
    const errors: unknown[] = [];
    const root = join(base, 'root');
    const { realpath } = await vi.importActual<typeof FsPromises>('node:fs/promises');
    swapped.add(join(await realpath(root), 'z'));
    const repo = await FileRepository.open(root, { onError: (e) => errors.push(e) });
    try {
      expect(repo.list().map((e) => e.path)).toEqual(['ok.bin']);
      expect(repo.byRelativePath('z/secret')).toBeUndefined();
      expect(errors.some((e) => (e as { cause?: { code?: string } }).cause?.code === 'FORBIDDEN')).toBe(true);
    } finally {
      await repo.close();
    }
  });
});

describe('FileRepository and entries a refresh dropped', () => {
  it('serves a reader that still holds a dropped entry without keeping its handle open', async () => {
    const { realpath } = await vi.importActual<typeof FsPromises>('node:fs/promises');
    const root = await realpath(await mkdtemp(join(tmpdir(), 'coapfw-dead-')));
    try {
      await writeFile(join(root, 'b.bin'), 'bbbb');
      const repo = await FileRepository.open(root, { maxFiles: 1 });
      const old = repo.byRelativePath('b.bin')!;
      await writeFile(join(root, 'a.bin'), 'aaaa'); // sorts first: b.bin falls out of the index, unchanged on disk
      await repo.refresh();
      expect(repo.byRelativePath('b.bin')).toBeUndefined();
      expect(Buffer.from(await old.read(0, 4)).toString()).toBe('bbbb');
      expect(repo.openFiles).toBe(0);
      await repo.close();
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
