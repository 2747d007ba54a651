/**
 * What `serve DIR` indexes (issue 8, item 10): hidden names and the names a
 * publisher writes while a file is in progress are skipped unless asked for,
 * and a directory that cannot be read is reported, never "0 files" in silence.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code, MessageType } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { isCoapfwError } from '../../src/errors.js';
import { fileResources } from '../../src/server/file-server.js';
import { FileRepository } from '../../src/server/files.js';
import { routeRequests } from '../../src/server/router.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-scan-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FILES = ['fw.bin', 'sub/ok.bin', '.env', '.git/config', 'sub/.hidden', 'fw.bin.tmp', 'kernel.part', 'notes~', '.#lock', '#draft#', 'sub/.fw.bin.swp'];

async function populate(): Promise<void> {
  for (const f of FILES) {
    await mkdir(join(dir, f, '..'), { recursive: true });
    await writeFile(join(dir, f), f === '.env' ? 'SECRET=hunter2' : f);
  }
}

describe('hidden and in-progress names', () => {
  it('are not indexed by default, so /files/.env is 4.04', async () => {
    await populate();
    const repo = await FileRepository.open(dir);
    try {
      expect(repo.list().map((f) => f.path)).toEqual(['fw.bin', 'sub/ok.bin']);
      const handler = routeRequests(fileResources(repo));
      const get = async (path: string) =>
        (await handler({ message: { type: MessageType.CON, code: Code.GET, messageId: 1, token: new Uint8Array(), options: pathOptions(path), payload: new Uint8Array() }, peer: { address: '127.0.0.1', port: 1 } })) as ResponseSpec;
      const env = await get('/files/.env');
      expect(env.code).toBe(Code.NOT_FOUND);
      expect(new TextDecoder().decode(env.payload)).not.toContain('hunter2');
      expect((await get('/files/fw.bin')).code).toBe(Code.CONTENT);
    } finally {
      await repo.close();
    }
  });

  it('are indexed when the options ask for them', async () => {
    await populate();
    const hidden = await FileRepository.open(dir, { includeHidden: true });
    expect(hidden.list().map((f) => f.path)).toEqual(['.env', '.git/config', 'fw.bin', 'sub/.hidden', 'sub/ok.bin']);
    await hidden.close();
    const partial = await FileRepository.open(dir, { includeTemporary: true });
    expect(partial.list().map((f) => f.path)).toEqual(['#draft#', 'fw.bin', 'fw.bin.tmp', 'kernel.part', 'notes~', 'sub/ok.bin']);
    await partial.close();
    const all = await FileRepository.open(dir, { includeHidden: true, includeTemporary: true });
    expect(all.list().map((f) => f.path).sort()).toEqual([...FILES].sort());
    await all.close();
  });

  it('a write-then-rename publish is indexed only under its final name', async () => {
    const repo = await FileRepository.open(dir);
    await writeFile(join(dir, 'app.bin.tmp'), 'half written');
    await writeFile(join(dir, '.app.bin.part'), 'half written');
    expect(await repo.refresh()).toEqual([]);
    expect(repo.list()).toEqual([]);
    await repo.close();
  });
});

/**
 * Opens `root` with FileRepository in a child process that cannot read what
 * is locked (as the unprivileged user `nobody` when the tests run as root,
 * whom no file mode stops), and reports what happened as JSON.
 */
function openAsUnprivileged(root: string): { error?: { code: string; message: string }; files?: string[]; errors?: string[] } {
  const files = join(import.meta.dirname, '../../dist/src/server/files.js');
  const script = `
    const { FileRepository } = await import(${JSON.stringify(files)});
    const errors = [];
    try {
      const repo = await FileRepository.open(${JSON.stringify(root)}, { onError: (e) => errors.push(e.code + ' ' + e.message) });
      console.log(JSON.stringify({ files: repo.list().map((f) => f.path), errors }));
      await repo.close();
    } catch (e) {
      console.log(JSON.stringify({ error: { code: e.code, message: e.message } }));
    }`;
  const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000, ...asNobody });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim());
}

describe('unreadable directories', () => {
  it('an unreadable root is a clear error naming it, not "serving 0 files"', async () => {
    await chmod(dir, 0o755);
    const root = join(dir, 'images');
    await mkdir(root);
    await writeFile(join(root, 'fw.bin'), 'x');
    await chmod(root, 0o000);
    try {
      const r = openAsUnprivileged(root);
      expect(r.error?.code).toBe('IO_ERROR');
      expect(r.error?.message).toContain(root);
      expect(r.error?.message).toMatch(/EACCES|permission/i);
    } finally {
      await chmod(root, 0o755);
    }
  });

  it('an unreadable subdirectory goes to onError (named), the rest is served', async () => {
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'a.bin'), 'a');
    await chmod(join(dir, 'a.bin'), 0o644);
    await mkdir(join(dir, 'locked'));
    await writeFile(join(dir, 'locked', 'b.bin'), 'b');
    await chmod(join(dir, 'locked'), 0o000);
    try {
      const r = openAsUnprivileged(dir);
      expect(r.files).toEqual(['a.bin']);
      expect(r.errors).toHaveLength(1);
      expect(r.errors![0]).toMatch(/^IO_ERROR .*'locked'/);
    } finally {
      await chmod(join(dir, 'locked'), 0o755);
    }
  });

  it('a root that is not a directory is INVALID_ARGUMENT', async () => {
    await writeFile(join(dir, 'file'), 'x');
    const e = await FileRepository.open(join(dir, 'file')).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'INVALID_ARGUMENT')).toBe(true);
  });
});
