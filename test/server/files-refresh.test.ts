/**
 * A file that cannot be hashed (deleted or renamed between scan and hash,
 * EACCES) must not fail the refresh, nor kill `coapfw serve` through an
 * unhandled rejection of the periodic refresh. The failure is injected by
 * mocking `open` for names containing "unreadable" (the tests
 * run as root, where chmod 000 does not stop reads).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Code } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { CoapfwError } from '../../src/errors.js';
import { FileRepository } from '../../src/server/files.js';
import { startFileServer } from '../../src/server/serve.js';
import { openClient } from '../../src/client/open.js';

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const open = ((path: string, ...rest: unknown[]) => {
    if (String(path).includes('unreadable')) return Promise.reject(Object.assign(new Error(`EACCES: permission denied, open '${String(path)}'`), { code: 'EACCES' }));
    return (fs.open as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.open;
  return { ...fs, open, default: { ...fs, open } };
});

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-refresh-'));
  await writeFile(join(dir, 'good.bin'), 'good');
  await writeFile(join(dir, 'unreadable.bin'), 'secret');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('refresh with a file that cannot be hashed', () => {
  it('indexes the other files, reports the failure through onError and counts it', async () => {
    const errors: unknown[] = [];
    const repo = await FileRepository.open(dir, { onError: (e) => errors.push(e) });
    try {
      expect(repo.list().map((f) => f.path)).toEqual(['good.bin']);
      expect(repo.errorCount).toBe(1);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(CoapfwError);
      expect(errors[0]).toMatchObject({ code: 'IO_ERROR' });
      expect(String((errors[0] as Error).message)).toContain('unreadable.bin');
      // Later refreshes retry it and still resolve.
      await expect(repo.refresh()).resolves.toEqual([]);
      expect(repo.errorCount).toBe(2);
    } finally {
      await repo.close();
    }
  });

  it('concurrent refreshes run one after the other and agree', async () => {
    const repo = await FileRepository.open(dir);
    try {
      await writeFile(join(dir, 'new.bin'), 'new');
      const [a, b] = await Promise.all([repo.refresh(), repo.refresh()]);
      expect(a).toEqual(['new.bin']);
      expect(b).toEqual([]);
    } finally {
      await repo.close();
      await rm(join(dir, 'new.bin'), { force: true });
    }
  });

  it('serve starts with one unreadable file, serves the others, and a rejected periodic refresh goes to onError', async () => {
    let rejected: (e: unknown) => void = () => {};
    const reported = new Promise<unknown>((resolve) => (rejected = resolve));
    const seen: unknown[] = [];
    const server = await startFileServer({
      dir,
      host: '127.0.0.1',
      port: 0,
      refreshMs: 5,
      onError: (e) => {
        seen.push(e);
        if (e instanceof Error && e.message === 'boom') rejected(e);
      },
    });
    const client = await openClient(`coap://127.0.0.1:${server.address().port}/`);
    try {
      const r = await client.request({ code: Code.GET, options: pathOptions('/files/good.bin') });
      expect(r.code).toBe(Code.CONTENT);
      expect(new TextDecoder().decode(r.payload)).toBe('good');
      const missing = await client.request({ code: Code.GET, options: pathOptions('/files/unreadable.bin') });
      expect(missing.code).toBe(Code.NOT_FOUND);
      // Make the next periodic refresh reject outright: it must be caught (an
      // unhandled rejection fails this run) and reported.
      server.repo.refresh = () => Promise.reject(new Error('boom'));
      await expect(reported).resolves.toMatchObject({ message: 'boom' });
      expect(seen.length).toBeGreaterThanOrEqual(2);
      expect(server.repo.errorCount).toBeGreaterThanOrEqual(2);
    } finally {
      await client.close();
      await server.close();
    }
  });
});
