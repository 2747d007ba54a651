/** Opening a store from a URL or a path; SQLite settings; a PostgreSQL that is not there. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { openStore, parseStoreUrl } from '../../src/service/open.js';
import { expectCode, registration } from './fixtures.js';

describe('parseStoreUrl', () => {
  it.each([
    ['postgres://u:pw@db:5432/fleet', { backend: 'postgres', url: 'postgres://u:pw@db:5432/fleet' }],
    ['postgresql://db/fleet', { backend: 'postgres', url: 'postgresql://db/fleet' }],
    ['sqlite:./fleet.db', { backend: 'sqlite', path: './fleet.db' }],
    ['sqlite:///var/lib/coapfw/fleet.db', { backend: 'sqlite', path: '/var/lib/coapfw/fleet.db' }],
    ['fleet.db', { backend: 'sqlite', path: 'fleet.db' }],
    ['/abs/fleet.db', { backend: 'sqlite', path: '/abs/fleet.db' }],
    [':memory:', { backend: 'sqlite', path: ':memory:' }],
    ['C:\\data\\fleet.db', { backend: 'sqlite', path: 'C:\\data\\fleet.db' }],
  ])('%s', (url, expected) => {
    expect(parseStoreUrl(url)).toEqual(expected);
  });

  it.each(['', '  ', 'sqlite:', 'mysql://root:secret@db/x', 'http://x'])('refuses %j', (url) => {
    let error: unknown;
    try {
      parseStoreUrl(url);
    } catch (e) {
      error = e;
    }
    expect(isCoapfwError(error, 'INVALID_ARGUMENT')).toBe(true);
    expect((error as Error).message).not.toContain('secret');
  });
});

describe('openStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coapfw-open-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('opens SQLite from sqlite:PATH, a bare path and :memory:, in WAL mode', async () => {
    for (const url of [`sqlite:${join(dir, 'a.db')}`, join(dir, 'b.db'), ':memory:']) {
      const s = await openStore(url);
      await s.registerDevice(registration('d'));
      expect((await s.getDevice('d'))!.id).toBe('d');
      const mode = await (s as unknown as { driver: { get<T>(q: string): Promise<T> } }).driver.get<{ journal_mode: string }>('PRAGMA journal_mode');
      expect(mode.journal_mode).toBe(url === ':memory:' ? 'memory' : 'wal');
      await s.close();
    }
    expect(existsSync(join(dir, 'a.db'))).toBe(true);
    expect(existsSync(join(dir, 'b.db'))).toBe(true);
  });

  it('a file that is not a database is refused with IO_ERROR', async () => {
    await expectCode(openStore(join(dir, 'no', 'such', 'dir', 'x.db')), 'IO_ERROR');
  });

  it('an unreachable PostgreSQL fails with IO_ERROR, without the password in the message', async () => {
    let error: unknown;
    try {
      await openStore('postgres://u:hunter2@127.0.0.1:1/x', { postgres: { connectTimeoutMs: 3000 } });
    } catch (e) {
      error = e;
    }
    expect(isCoapfwError(error, 'IO_ERROR')).toBe(true);
    expect((error as Error).message).toContain('127.0.0.1:1');
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('two processes writing one SQLite file at once both get every write in', async () => {
    const file = join(dir, 'shared.db');
    const openJs = resolve('dist/src/service/open.js');
    const script = `
      const { openStore } = await import(${JSON.stringify(openJs)});
      const s = await openStore(${JSON.stringify(file)});
      for (let i = 0; i < 100; i++) {
        await s.registerDevice({ id: process.argv[1] + '-' + i, vendorId: '01', classId: '02', installedSeq: 0, mode: 'client' });
        await s.recordReport(process.argv[1] + '-' + i, { reportSeq: 1, state: 'idle' });
      }
      await s.close();`;
    const run = (name: string): Promise<number | null> =>
      new Promise((done, fail) => {
        const child = spawn(process.execPath, ['--input-type=module', '-e', script, name], { stdio: ['ignore', 'ignore', 'inherit'] });
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        child.on('error', fail);
        child.on('exit', (code) => (clearTimeout(timer), done(code)));
      });
    expect(await Promise.all([run('p'), run('q')])).toEqual([0, 0]);
    const s = await openStore(file);
    expect(await s.countDevicesByState()).toEqual({ idle: 200 });
    await s.close();
  });
});
