import { mkdir, mkdtemp, rm, symlink, writeFile, readFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { downloadToFile } from '../../src/client/file-sink.js';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { parseLinks } from '../../src/codec/link-format.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { openClient, type CoapClient } from '../../src/client/open.js';

let dir: string;
let outside: string;
let server: FileServer;
let client: CoapClient;
const big = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 13) & 0xff);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-srv-'));
  outside = await mkdtemp(join(tmpdir(), 'coapfw-out-'));
  await mkdir(join(dir, 'boards', 'a'), { recursive: true });
  await writeFile(join(dir, 'big.bin'), big);
  await writeFile(join(dir, 'boards', 'a', 'kernel.img'), 'kernel');
  await writeFile(join(outside, 'secret'), 'secret');
  await symlink(join(outside, 'secret'), join(dir, 'leak'));
  await symlink(join(dir, 'big.bin'), join(dir, 'alias.bin'));
  server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
  client = await openClient(`coap://127.0.0.1:${server.address().port}/`);
});

afterAll(async () => {
  await client?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

const get = (path: string, extra: { number: number; value: Uint8Array }[] = [], code: number = Code.GET) =>
  client.request({ code, options: [...pathOptions(path), ...extra] });

describe('file server', () => {
  it('serves files by path and by SHA-256, block-wise', async () => {
    const byPath = await fetchAll(client.request, { runtime: client.runtime, options: pathOptions('/files/big.bin') });
    expect(byPath.data).toEqual(big);
    const byHash = await fetchAll(client.request, { runtime: client.runtime, options: pathOptions(`/fw/sha256/${bytesToHex(sha256(big))}`) });
    expect(byHash.data).toEqual(big);
    expect(byHash.etag).toEqual(sha256(big).slice(0, 8));
  });

  it('serves nested paths and symlinks that stay inside the root', async () => {
    expect(new TextDecoder().decode((await get('/files/boards/a/kernel.img')).payload)).toBe('kernel');
    expect((await get('/files/alias.bin')).code).toBe(Code.CONTENT);
  });

  it('refuses symlinks out of the root, dot segments, and unknown paths', async () => {
    expect((await get('/files/leak')).code).toBe(Code.NOT_FOUND);
    const dots = await client.request({ code: Code.GET, options: [{ number: OptionNumber.URI_PATH, value: new TextEncoder().encode('files') }, { number: OptionNumber.URI_PATH, value: new TextEncoder().encode('..') }, { number: OptionNumber.URI_PATH, value: new TextEncoder().encode('big.bin') }] });
    expect(dots.code).toBe(Code.BAD_REQUEST);
    expect((await get('/nothing')).code).toBe(Code.NOT_FOUND);
    expect((await get(`/fw/sha256/${'0'.repeat(64)}`)).code).toBe(Code.NOT_FOUND);
  });

  it('answers 4.05 to methods other than GET and 4.02 to unknown critical options', async () => {
    expect((await get('/files/big.bin', [], Code.PUT)).code).toBe(Code.METHOD_NOT_ALLOWED);
    expect((await get('/files/big.bin', [{ number: 9, value: new Uint8Array([1]) }])).code).toBe(Code.BAD_OPTION);
  });

  it('lists both names of every file in /.well-known/core, with rt filtering', async () => {
    const all = await fetchAll(client.request, { runtime: client.runtime, options: pathOptions('/.well-known/core') });
    const links = parseLinks(new TextDecoder().decode(all.data));
    const targets = links.map((l) => l.target);
    expect(targets).toContain('/files/big.bin');
    expect(targets).toContain('/files/boards/a/kernel.img');
    expect(targets).toContain(`/fw/sha256/${bytesToHex(sha256(big))}`);
    expect(targets).not.toContain('/files/leak');
    const fw = await fetchAll(client.request, { runtime: client.runtime, options: [...pathOptions('/.well-known/core'), { number: OptionNumber.URI_QUERY, value: new TextEncoder().encode('rt=firmware') }] });
    const fwLinks = parseLinks(new TextDecoder().decode(fw.data));
    expect(fwLinks.length).toBeGreaterThan(0);
    expect(fwLinks.every((l) => l.target.startsWith('/fw/sha256/'))).toBe(true);
  });

  it('picks up a replaced file on refresh with a new ETag', async () => {
    await writeFile(join(dir, 'swap.tmp'), 'version 2');
    await rename(join(dir, 'swap.tmp'), join(dir, 'boards', 'a', 'kernel.img'));
    await server.repo.refresh();
    const r = await get('/files/boards/a/kernel.img');
    expect(new TextDecoder().decode(r.payload)).toBe('version 2');
  });
});

describe('downloadToFile', () => {
  let bigClient: CoapClient;
  const uri = () => `coap://127.0.0.1:${server.address().port}/files/big.bin`;
  beforeAll(async () => {
    bigClient = await openClient(uri());
  });
  afterAll(async () => {
    await bigClient?.close();
  });
  it('resumes a partial download at its last block (refetched) when the ETag matches', async () => {
    const out = join(outside, 'resumed.bin');
    const ctl = new AbortController();
    let blocks = 0;
    await expect(
      downloadToFile(bigClient, uri(), out, { onProgress: () => (++blocks === 20 ? ctl.abort() : undefined), signal: ctl.signal }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    const r = await downloadToFile(bigClient, uri(), out, { resume: true });
    // The part's block map says which blocks it holds (Q-Block2 writes them in any order): only the others are fetched.
    const held = r.resumedFrom / 1024;
    expect(Number.isInteger(held) && held >= 19 && held <= 20).toBe(true);
    expect(r.blocks).toBe(Math.ceil(70_000 / 1024) - held);
    expect(new Uint8Array(await readFile(out))).toEqual(big);
  });

  it('starts over when the partial download belongs to another version', async () => {
    const out = join(outside, 'stale.bin');
    await writeFile(`${out}.part`, new Uint8Array(5000));
    await writeFile(`${out}.part.json`, JSON.stringify({ uri: uri(), etag: '0102030405060708', szx: 6 }));
    const r = await downloadToFile(bigClient, uri(), out, { resume: true });
    expect(r.restarted).toBe(true);
    expect(r.resumedFrom).toBe(0);
    expect(new Uint8Array(await readFile(out))).toEqual(big);
  });
});
