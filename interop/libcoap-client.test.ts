/**
 * Interop: libcoap's `coap-client-notls` (4.3.1) fetching block-wise
 * (RFC 7959) from our file server, checked by SHA-256 of what it wrote
 * (coap-client exits 0 even when its output is short, so the exit code alone
 * proves nothing).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../src/server/serve.js';
import {
  COAP_CLIENT,
  describeWithBinaries,
  fixtureBytes,
  fixtureName,
  blockwiseWaitSeconds,
  inBatches,
  killAll,
  libcoapMissing,
  makeFixtureDir,
  run,
  sha256File,
  sha256Hex,
} from './helpers.js';

const MIB = 1024 * 1024;
const SIZES = [0, 1, 15, 16, 1023, 1024, 1025, MIB];
const BLOCK_SIZES = [16, 64, 256, 1024];

/**
 * 1 MiB is fetched only at 256 and 1024 bytes per block: at 16 bytes it is
 * 65,536 sequential round trips (and 16,384 at 64), which would dominate the
 * run time without exercising anything the small files at those sizes do not.
 */
const CASES = BLOCK_SIZES.flatMap((bs) => SIZES.filter((s) => s < MIB || bs >= 256).map((size) => ({ size, bs })));

describeWithBinaries('coap-client-notls fetches from coapfw serve', libcoapMissing(), () => {
  let fixtures: Awaited<ReturnType<typeof makeFixtureDir>>;
  let server: FileServer;
  let out: string;
  let port: number;

  beforeAll(async () => {
    fixtures = await makeFixtureDir(SIZES);
    out = await mkdtemp(join(tmpdir(), 'coapfw-interop-out-'));
    server = await startFileServer({ dir: fixtures.dir, host: '::', port: 0, refreshMs: 0 });
    port = server.address().port;
  });

  afterAll(async () => {
    killAll();
    await server?.close();
    await fixtures?.remove();
    if (out) await rm(out, { recursive: true, force: true });
  });

  it(`fetches ${CASES.length} size/block-size combinations with the right SHA-256`, { timeout: CASES.reduce((s, c) => s + blockwiseWaitSeconds(c.size, c.bs), 0) * 1000 }, async () => {
    const results = await inBatches(
      CASES.map(({ size, bs }) => async () => {
        const file = join(out, `${size}-${bs}.out`);
        // 1 MiB at 256-byte blocks is 4,096 round trips: the deadline follows the count (see blockwiseWaitSeconds).
        const wait = blockwiseWaitSeconds(size, bs);
        const r = await run(COAP_CLIENT, ['-m', 'get', '-B', String(wait), '-b', String(bs), `coap://127.0.0.1:${port}/files/${fixtureName(size)}`, '-o', file], (wait + 15) * 1000);
        // An error response (4.xx/5.xx) is printed by coap-client; a 0-byte file must come back as an empty 2.05.
        const errorShown = /\b[45]\.\d\d\b/.test(r.stdout + r.stderr);
        return { size, bs, code: r.code, timedOut: r.timedOut, errorShown, hash: await sha256File(file) };
      }),
      4,
    );
    // An empty representation may leave no output file at all; anything else must be there, byte for byte.
    const wrong = results.filter((r) => r.code !== 0 || r.timedOut || r.errorShown || (r.hash !== fixtures.hashes.get(r.size) && !(r.size === 0 && r.hash === 'missing')));
    expect(wrong).toEqual([]);
    expect(results).toHaveLength(CASES.length);
  });

  it('-b 5,64 fetches exactly block 5 (bytes 320..383) with a fresh token', async () => {
    const file = join(out, 'block5.out');
    const before = server.endpoint.stats.received;
    const r = await run(COAP_CLIENT, ['-m', 'get', '-B', '10', '-b', '5,64', `coap://127.0.0.1:${port}/files/${fixtureName(1025)}`, '-o', file], 15_000);
    expect(r.code).toBe(0);
    const got = await readFile(file);
    expect(sha256Hex(got)).toBe(sha256Hex(fixtureBytes(1025, 1026).subarray(320, 384)));
    // One request for that block, nothing before it.
    expect(server.endpoint.stats.received - before).toBe(1);
  });

  it('fetches over IPv6 (coap://[::1]:P)', async () => {
    const file = join(out, 'v6.out');
    const r = await run(COAP_CLIENT, ['-m', 'get', '-B', '20', '-b', '256', `coap://[::1]:${port}/files/${fixtureName(1025)}`, '-o', file], 25_000);
    expect(r.code).toBe(0);
    expect(await sha256File(file)).toBe(fixtures.hashes.get(1025));
  });

  it('gets 4.04 for a file that is not there and writes nothing', async () => {
    const file = join(out, 'nothing.out');
    const r = await run(COAP_CLIENT, ['-m', 'get', '-B', '5', `coap://127.0.0.1:${port}/files/absent.bin`, '-o', file], 10_000);
    expect(r.stderr + r.stdout).toMatch(/4\.04/);
    expect(await sha256File(file)).toBe('missing');
  });
});
