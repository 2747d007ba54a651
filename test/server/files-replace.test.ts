/**
 * An image replaced by rename between refreshes must never be served under
 * the old ETag/size/SHA-256: the lazily opened handle is checked against the
 * inode, size and mtime recorded at indexing; a mismatch answers 5.03 with
 * Max-Age and triggers a refresh. A handle opened before the replacement keeps
 * serving the old inode, which matches the old metadata.
 */
import { mkdtemp, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { decodeUint, getOption, pathOptions } from '../../src/codec/options.js';
import { fileResources } from '../../src/server/file-server.js';
import { routeRequests } from '../../src/server/router.js';
import { FileRepository } from '../../src/server/files.js';

let dir: string;
let repo: FileRepository;
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const hex = (s: string) => bytesToHex(sha256(new TextEncoder().encode(s)));

/** Replace `name` by rename (a new inode), keeping the same size and mtime as the old file. */
async function replaceSameSizeAndMtime(name: string, content: string): Promise<void> {
  const path = join(dir, name);
  const old = await stat(path);
  await writeFile(`${path}.tmp`, content);
  await utimes(`${path}.tmp`, old.atime, old.mtime);
  await rename(`${path}.tmp`, path);
}

const get = (path: string): CoapMessage => ({ type: MessageType.CON, code: Code.GET, messageId: 1, token: Uint8Array.of(1), options: pathOptions(path), payload: new Uint8Array() });

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-replace-'));
  await writeFile(join(dir, 'fw.bin'), 'version-1');
  repo = await FileRepository.open(dir);
});

afterEach(async () => {
  await repo.close();
  await rm(dir, { recursive: true, force: true });
});

describe('a file replaced by rename before the next refresh', () => {
  it('is refused with CONTENT_CHANGED (not served under the old ETag), then re-indexed', async () => {
    const old = repo.byRelativePath('fw.bin')!;
    expect(old.sha256).toBe(hex('version-1'));
    await replaceSameSizeAndMtime('fw.bin', 'version-2');
    await expect(Promise.resolve(old.read(0, 100))).rejects.toMatchObject({ code: 'CONTENT_CHANGED' });
    // The failed open triggered a refresh; refreshes are serialized, so this one sees its result.
    await repo.refresh();
    const now = repo.byRelativePath('fw.bin')!;
    expect(now.sha256).toBe(hex('version-2'));
    expect(text(await now.read(0, 100))).toBe('version-2');
    expect(repo.bySha256(hex('version-1'))).toBeUndefined();
  });

  it('answers a GET with 5.03 Service Unavailable and Max-Age', async () => {
    // The router maps the CONTENT_CHANGED a resource throws to its response, in one place.
    const handler = routeRequests(fileResources(repo));
    await replaceSameSizeAndMtime('fw.bin', 'version-2');
    const res = (await handler({ message: get('/files/fw.bin'), peer: { address: '127.0.0.1', port: 1 } }))!;
    expect(res.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(getOption({ ...get('/'), options: [...(res.options ?? [])] }, OptionNumber.ETAG)).toBeUndefined();
    const maxAge = getOption({ ...get('/'), options: [...(res.options ?? [])] }, OptionNumber.MAX_AGE);
    expect(maxAge && decodeUint(maxAge)).toBe(1);
  });

  it('a handle opened before the replacement keeps serving the old, matching bytes', async () => {
    const old = repo.byRelativePath('fw.bin')!;
    expect(text(await old.read(0, 4))).toBe('vers');
    await replaceSameSizeAndMtime('fw.bin', 'version-2');
    expect(text(await old.read(0, 100))).toBe('version-1');
    expect(old.sha256).toBe(hex('version-1'));
  });

  it('refresh re-hashes a same-size, same-mtime replacement (the inode changed)', async () => {
    await replaceSameSizeAndMtime('fw.bin', 'version-3');
    expect(await repo.refresh()).toEqual(['fw.bin']);
    expect(repo.byRelativePath('fw.bin')!.sha256).toBe(hex('version-3'));
  });
});
