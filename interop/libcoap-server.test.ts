/**
 * Interop: our client (`coapfw get`, the built CLI, and `downloadToFile`)
 * against libcoap's `coap-server-notls -d 10`, which holds a file that
 * libcoap's own client PUT there (block-wise, RFC 7959 Block1). libcoap's
 * server gives every GET transfer a new one-byte ETag (and none to a transfer
 * that starts past block 0), so `--resume` against it always starts over; resuming
 * proper (fewer blocks fetched) is checked against `coapfw serve`, whose
 * ETag is a prefix of the content's SHA-256.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadToFile } from '../src/client/file-sink.js';
import { isCoapfwError } from '../src/errors.js';
import { startFileServer, type FileServer } from '../src/server/serve.js';
import { openClient } from '../src/client/open.js';
import {
  describeWithBinaries,
  fixtureBytes,
  killAll,
  libcoapMissing,
  putToLibcoap,
  run,
  sha256File,
  sha256Hex,
  startLibcoapServer,
} from './helpers.js';

const CLI = resolve('dist/src/cli/bin.js');
const SIZE = 50_000; // 49 blocks of 1024 bytes: 48 full ones and 848 bytes
const BLOCKS = Math.ceil(SIZE / 1024);

function coapfw(args: string[], timeoutMs = 30_000): ReturnType<typeof run> {
  return run(process.execPath, [CLI, ...args], timeoutMs);
}

/** Download `uri` with the library and abort it after `blocks` blocks: leaves FILE.part and FILE.part.json. */
async function interruptedDownload(uri: string, out: string, blocks: number): Promise<void> {
  const client = await openClient(uri);
  const abort = new AbortController();
  try {
    await downloadToFile(client, uri, out, { signal: abort.signal, onProgress: (p) => void (p.block >= blocks - 1 && abort.abort()) });
  } catch (e) {
    if (isCoapfwError(e, 'ABORTED')) return;
    throw e;
  } finally {
    await client.close();
  }
  throw new Error('the download was not interrupted');
}

describeWithBinaries('coapfw get from libcoap coap-server-notls', libcoapMissing(), () => {
  let dir: string;
  let server: Awaited<ReturnType<typeof startLibcoapServer>>;
  const original = fixtureBytes(SIZE, 7);
  const replacement = fixtureBytes(SIZE + 100, 8);

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
    dir = await mkdtemp(join(tmpdir(), 'coapfw-interop-get-'));
    await writeFile(join(dir, 'original.bin'), original);
    await writeFile(join(dir, 'replacement.bin'), replacement);
    server = await startLibcoapServer();
    const put = await putToLibcoap(server.uri('fw.bin'), join(dir, 'original.bin'));
    if (put.code !== 0) throw new Error(`PUT to coap-server-notls failed: ${put.stderr}`);
  });

  afterAll(async () => {
    await server?.stop();
    killAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('fetches the file libcoap holds, with the right SHA-256', async () => {
    const out = join(dir, 'full.bin');
    const r = await coapfw(['get', server.uri('fw.bin'), '-o', out]);
    expect(r.stderr).toContain(`${SIZE} bytes in ${BLOCKS} blocks`);
    expect(r.code).toBe(0);
    expect(await sha256File(out)).toBe(sha256Hex(original));
    // The partial file and its metadata are gone after success.
    expect(existsSync(`${out}.part`)).toBe(false);
    expect(existsSync(`${out}.part.json`)).toBe(false);
  });

  it('fetches at 64-byte blocks', async () => {
    const out = join(dir, 'small-blocks.bin');
    const r = await coapfw(['get', server.uri('fw.bin'), '-o', out, '--block-size', '64']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`in ${Math.ceil(SIZE / 64)} blocks`);
    expect(await sha256File(out)).toBe(sha256Hex(original));
  });

  it('--resume against libcoap starts over, and still gets the right bytes', async () => {
    // libcoap's example server (4.3.1, -d) gives every GET transfer that starts
    // at block 0 a new ETag (0x01, 0x02, ...) and sends none when a transfer
    // starts at a later block, so a partial file can never be proven to be the
    // same representation: RFC 7959 §2.4 says do not stitch, so we start over.
    const out = join(dir, 'resumed.bin');
    const uri = server.uri('fw.bin');
    await interruptedDownload(uri, out, 10);
    expect((await stat(`${out}.part`)).size).toBe(10 * 1024);
    expect(existsSync(`${out}.part.json`)).toBe(true);

    const r = await coapfw(['get', uri, '-o', out, '--resume']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${SIZE} bytes in ${BLOCKS} blocks (resource changed: started over)`);
    expect(await sha256File(out)).toBe(sha256Hex(original));
  });

  it('gives a clear error and a non-zero exit code for a resource that is not there', async () => {
    const out = join(dir, 'absent.bin');
    const r = await coapfw(['get', server.uri('absent.bin'), '-o', out, '--retries', '1']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/4\.04/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
  });

  it('fetches a file replaced by PUT (the new version, not a mix)', async () => {
    const uri = server.uri('fw.bin');
    const put = await putToLibcoap(uri, join(dir, 'replacement.bin'));
    expect(put.code).toBe(0);
    const out = join(dir, 'replaced.bin');
    const r = await coapfw(['get', uri, '-o', out]);
    expect(r.code).toBe(0);
    expect(await sha256File(out)).toBe(sha256Hex(replacement));
  });
});

describe('coapfw get --resume from coapfw serve', () => {
  let dir: string;
  let files: string;
  let server: FileServer;
  let uri: string;
  const original = fixtureBytes(SIZE, 9);
  const replacement = fixtureBytes(SIZE - 1000, 10);

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
    dir = await mkdtemp(join(tmpdir(), 'coapfw-interop-resume-'));
    files = join(dir, 'files');
    await mkdir(files);
    await writeFile(join(files, 'fw.bin'), original);
    server = await startFileServer({ dir: files, host: '127.0.0.1', port: 0, refreshMs: 0 });
    uri = `coap://127.0.0.1:${server.address().port}/files/fw.bin`;
  });

  afterAll(async () => {
    killAll();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('continues an interrupted download with the blocks it lacks (fewer requests)', async () => {
    const out = join(dir, 'resumed.bin');
    await interruptedDownload(uri, out, 10);
    expect((await stat(`${out}.part`)).size).toBe(10 * 1024);
    const before = server.endpoint.stats.received;
    const r = await coapfw(['get', uri, '-o', out, '--resume']);
    expect(r.code).toBe(0);
    // The part's block map records the 10 blocks it holds: only the others are fetched, with Q-Block2 from
    // our server (a probe, then requests naming up to MAX_PAYLOADS missing blocks each).
    expect(r.stderr).toContain(`${SIZE} bytes in ${BLOCKS - 10} blocks (Q-Block2; resumed with ${10 * 1024} bytes held)`);
    const requests = server.endpoint.stats.received - before;
    expect(requests).toBeGreaterThan(0);
    expect(requests).toBeLessThanOrEqual(BLOCKS - 10 + 1);
    expect(await sha256File(out)).toBe(sha256Hex(original));
  });

  it('starts over when the file was replaced since (ETag changed)', async () => {
    const out = join(dir, 'replaced.bin');
    await interruptedDownload(uri, out, 5);
    await writeFile(join(files, 'fw.bin'), replacement);
    await server.repo.refresh();
    const r = await coapfw(['get', uri, '-o', out, '--resume']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${replacement.length} bytes in ${Math.ceil(replacement.length / 1024)} blocks (Q-Block2; resource changed: started over)`);
    expect(await sha256File(out)).toBe(sha256Hex(replacement));
  });
});
