/**
 * `coapfw manifest create --block-digests SIZE`: the envelope carries
 * coapfw-block-digests beside the image digest, the digest list is written
 * into the served directory, and a single-bank device installs the image in
 * place from a plain `coapfw serve` of that directory (loopback UDP).
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { openClient } from '../../src/client/open.js';
import { bootInPlace } from '../../src/device/boot-inplace.js';
import { provisionDevice } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import { createSingleBankLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { startFileServer } from '../../src/server/serve.js';
import { buildBlockDigests } from '../../src/suit/block-digests.js';
import { blockDigestsOf } from '../../src/suit/block-digests-param.js';
import { parsePublicKey } from '../../src/suit/keys.js';
import { decodeEnvelope } from '../../src/suit/decode.js';
import { captureIo } from '../helpers/cli-io.js';

const VENDOR = 'fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe';
const CLASS = '1492af14-2569-5e48-bf42-9b2d51f2ab45';
const uuid = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/-/g, ''), 'hex'));
const OLD = Uint8Array.from({ length: 30_000 }, (_, i) => (i * 13) & 0xff);
const NEW = Uint8Array.from({ length: 40_000 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);
let dir: string;

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = captureIo();
  const code = await main(argv, c.io);
  return { code, out: c.out(), err: c.err() };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-block-auth-cli-'));
  await mkdir(join(dir, 'srv'));
  await writeFile(join(dir, 'srv', 'app-v2.bin'), NEW);
  const json = { 'manifest-version': 1, 'manifest-sequence-number': 2, components: [{ 'install-id': ['00'], 'vendor-id': VENDOR, 'class-id': CLASS, file: 'app-v2.bin' }] };
  await writeFile(join(dir, 'srv', 'update.json'), JSON.stringify(json));
  expect((await run('keygen', '--out', join(dir, 'oem.key'))).code).toBe(0);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('manifest create --block-digests', () => {
  it('writes the digest list into the served directory and binds its root into the manifest', async () => {
    const r = await run('manifest', 'create', join(dir, 'srv', 'update.json'), '--key', join(dir, 'oem.key'), '-o', join(dir, 'srv', 'update.suit'), '--block-digests', '1024');
    expect(r.code, r.err).toBe(0);
    const want = buildBlockDigests(NEW, { blockSize: 1024 });
    const hex = bytesToHex(sha256(want.resource));
    expect(r.out).toContain(`${hex}.digests: ${want.resource.length} bytes, block digests of app-v2.bin (1024-byte blocks)`);
    expect(Buffer.from(await readFile(join(dir, 'srv', `${hex}.digests`))).equals(Buffer.from(want.resource))).toBe(true);
    const env = decodeEnvelope(new Uint8Array(await readFile(join(dir, 'srv', 'update.suit'))));
    const shared = env.manifest.sharedSequence.find((c) => c.kind === 'override-parameters' && c.params.imageDigest);
    expect(shared?.kind === 'override-parameters' && blockDigestsOf(shared.params)).toEqual({ ...want.info, uri: `/fw/sha256/${hex}` });
  });

  it('refuses a block size that is not a power of two, and --digests-dir without --block-digests', async () => {
    const bad = await run('manifest', 'create', join(dir, 'srv', 'update.json'), '--key', join(dir, 'oem.key'), '-o', join(dir, 'x.suit'), '--block-digests', '1000');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/blockSize must be a power of two.*\[INVALID_ARGUMENT\]/);
    const usage = await run('manifest', 'create', join(dir, 'srv', 'update.json'), '--key', join(dir, 'oem.key'), '-o', join(dir, 'x.suit'), '--digests-dir', dir);
    expect(usage.code).toBe(2);
    expect((await readdir(dir)).includes('x.suit')).toBe(false);
  });

  it('a single-bank device installs it in place from coapfw serve of that directory', { timeout: 60_000 }, async () => {
    const server = await startFileServer({ dir: join(dir, 'srv'), host: '127.0.0.1', port: 0, refreshMs: 0 });
    const uri = `coap://127.0.0.1:${server.address().port}/files/update.suit`;
    const client = await openClient(uri);
    try {
      const flash = new MemoryFlash({ size: 96 * 1024, eraseBlockSize: 1024 });
      const layout = createSingleBankLayout(flash, { slotSize: 60 * 1024 });
      await provisionDevice(flash, layout, OLD, 1);
      const pub = parsePublicKey(await readFile(join(dir, 'oem.key.pub'), 'utf8'));
      const st = await runUpdate({ flash, layout, request: client.request.bind(client), manifestUri: uri, runtime: client.runtime, trust: { anchors: [{ name: 'oem', publicKey: pub }] }, vendorId: uuid(VENDOR), classId: uuid(CLASS) });
      expect(st).toMatchObject({ result: 'installed', installedSequence: 2, blocksFetched: 40 });
      const b = await bootInPlace(flash, layout);
      expect(b.state === 'run' && bytesToHex(b.image.digest)).toBe(bytesToHex(sha256(NEW)));
    } finally {
      await client.close();
      await server.close();
    }
  });
});
