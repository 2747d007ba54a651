/**
 * `coapfw manifest` and `keygen` on the inputs people get wrong: the README's
 * update.json as written, a typo in a key, a placeholder URI, files that are
 * directories or endless (/dev/zero), an existing key file; and the JSON
 * output of verify and inspect.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { captureIo } from '../helpers/cli-io.js';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string; ms: number }> {
  const c = captureIo();
  const started = performance.now();
  const code = await main(argv, c.io);
  return { code, out: c.out(), err: c.err(), ms: performance.now() - started };
}

const VENDOR = 'fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe';
const CLASS = '1492af14-2569-5e48-bf42-9b2d51f2ab45';
const image = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff);
const digest = bytesToHex(sha256(image));
let dir: string;
const p = (f: string): string => join(dir, f);

function component(extra: Record<string, unknown>): Record<string, unknown> {
  return { 'install-id': ['00'], 'vendor-id': VENDOR, 'class-id': CLASS, file: 'app-v2.bin', ...extra };
}
async function input(name: string, components: Record<string, unknown>[], top: Record<string, unknown> = {}): Promise<string> {
  await writeFile(p(name), JSON.stringify({ 'manifest-version': 1, 'manifest-sequence-number': 5, components, ...top }));
  return p(name);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-manifest-cli-'));
  await writeFile(p('app-v2.bin'), image);
  await mkdir(p('a-dir'));
  expect((await run('keygen', '--out', p('oem.key'))).code).toBe(0);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('manifest create', () => {
  it('the README input ("file", no "uri") gets the content address of the image, and verifies', async () => {
    const json = await input('update.json', [component({})]);
    const created = await run('manifest', 'create', json, '--key', p('oem.key'), '-o', p('update.suit'));
    expect(created.code, created.err).toBe(0);
    const inspected = await run('manifest', 'inspect', p('update.suit'), '--json');
    const s = JSON.parse(inspected.out) as { images: { uri: string; digest: { hex: string }; size: number }[]; vendorIds: string[]; classIds: string[] };
    expect(s.images).toEqual([expect.objectContaining({ uri: `/fw/sha256/${digest}`, digest: { alg: -16, hex: digest }, size: 5000 })]);
    // UUIDs with dashes, as text mode prints them.
    expect(s.vendorIds).toEqual([VENDOR]);
    expect(s.classIds).toEqual([CLASS]);
    const text = await run('manifest', 'inspect', p('update.suit'));
    expect(text.out).toContain(`  vendor id:       ${VENDOR}\n`);
  });

  it('an unknown key is an error naming it and the key it is close to', async () => {
    const json = await input('typo.json', [component({ url: '/fw/x' })]);
    const r = await run('manifest', 'create', json, '--key', p('oem.key'), '-o', p('typo.suit'));
    expect(r.code).toBe(1);
    expect(r.err).toBe(`coapfw manifest: ${json}: components[0]: unknown key "url" (did you mean "uri"?) [INVALID_ARGUMENT]\n`);
    const top = await input('typo2.json', [component({})], { 'manifest-sequence-numbr': 6 });
    expect((await run('manifest', 'create', top, '--unsigned', '-o', p('t.suit'))).err).toMatch(/manifest JSON: unknown key "manifest-sequence-numbr" \(did you mean "manifest-sequence-number"\?\)/);
  });

  it('a placeholder URI is refused, not signed', async () => {
    const json = await input('ph.json', [component({ uri: '/fw/sha256/<sha256 of app-v2.bin>' })]);
    const r = await run('manifest', 'create', json, '--key', p('oem.key'), '-o', p('ph.suit'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/components\[0\] uri: '\/fw\/sha256\/<sha256 of app-v2\.bin>' is not a valid URI .*leave "uri" out to use the content address of "file" \[INVALID_ARGUMENT\]\n$/);
    const wrong = await input('wrong.json', [component({ uri: `/fw/sha256/${'0'.repeat(64)}` })]);
    expect((await run('manifest', 'create', wrong, '--unsigned', '-o', p('w.suit'))).err).toMatch(/is the content address of another image, not of 'app-v2\.bin' \(\/fw\/sha256\/[0-9a-f]{64}\) \[DIGEST_MISMATCH\]/);
  });

  it('a "file" that is a directory or missing is named', async () => {
    const json = await input('dir.json', [component({ file: 'a-dir' })]);
    const r = await run('manifest', 'create', json, '--unsigned', '-o', p('d.suit'));
    expect(r.err).toBe(`coapfw manifest: ${p('a-dir')}: is a directory, expected an image [IO_ERROR]\n`);
    const missing = await input('missing.json', [component({ file: 'nope.bin' })]);
    expect((await run('manifest', 'create', missing, '--unsigned', '-o', p('m.suit'))).err).toBe(`coapfw manifest: ${p('nope.bin')}: no such file or directory [IO_ERROR]\n`);
  });
});

describe('bounded reads', () => {
  it.each([
    ['inspect', ['manifest', 'inspect', '/dev/zero'], /\/dev\/zero: larger than 262144 bytes, the limit for a SUIT envelope \[TOO_LARGE\]/],
    ['verify --trust', ['manifest', 'verify', '/dev/null', '--trust', '/dev/zero'], /\/dev\/zero: larger than 65536 bytes, the limit for a key file \[TOO_LARGE\]/],
    ['create', ['manifest', 'create', '/dev/zero', '--unsigned', '-o', '/dev/null'], /\/dev\/zero: larger than 1048576 bytes, the limit for a manifest JSON input \[TOO_LARGE\]/],
    ['sign --key', ['manifest', 'sign', '/dev/null', '--key', '/dev/zero', '-o', '/dev/null'], /\/dev\/zero: larger than 65536 bytes/],
  ])('%s /dev/zero fails fast with the limit', async (_name, args, message) => {
    const r = await run(...args);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
    expect(r.err.split('\n')).toHaveLength(2);
    expect(r.ms).toBeLessThan(5000);
  });

  it('a directory given as a file is named (EISDIR)', async () => {
    expect((await run('manifest', 'inspect', p('a-dir'))).err).toBe(`coapfw manifest: ${p('a-dir')}: is a directory, expected a SUIT envelope [IO_ERROR]\n`);
    expect((await run('manifest', 'verify', p('update.suit'), '--trust', p('a-dir'))).err).toBe(`coapfw manifest: ${p('a-dir')}: is a directory, expected a key file [IO_ERROR]\n`);
    expect((await run('manifest', 'create', p('update.json'), '--key', p('oem.key'), '-o', p('a-dir'))).err).toBe(`coapfw manifest: ${p('a-dir')}: is a directory [IO_ERROR]\n`);
  });
});

describe('manifest verify --json', () => {
  it('prints one JSON line for ok and for a rejected envelope', async () => {
    const ok = await run('manifest', 'verify', p('update.suit'), '--trust', p('oem.key.pub'), '--installed-seq', '4', '--vendor-id', VENDOR, '--class-id', CLASS.replaceAll('-', ''), '--json');
    expect(ok.code, ok.err).toBe(0);
    expect(JSON.parse(ok.out)).toEqual({ result: 'ok', file: p('update.suit'), sequenceNumber: 5, signedBy: [p('oem.key.pub')] });
    const old = await run('manifest', 'verify', p('update.suit'), '--trust', p('oem.key.pub'), '--installed-seq', '5', '--json');
    expect(old.code).toBe(1);
    expect(JSON.parse(old.out)).toMatchObject({ result: 'rejected', error: { code: 'ROLLBACK' } });
    expect(old.err.trim().split('\n')).toHaveLength(1);
    const badUuid = await run('manifest', 'verify', p('update.suit'), '--trust', p('oem.key.pub'), '--vendor-id', 'fa6b-4a53');
    expect(badUuid.code).toBe(2);
    expect(badUuid.err).toMatch(/--vendor-id: expected a UUID \(8-4-4-4-12 hex digits, or 32 hex digits\), got 'fa6b-4a53'/);
  });
});

describe('keygen', () => {
  it('--out DIR and an existing key are clear errors, and nothing is half-written', async () => {
    const d = await run('keygen', '--out', p('a-dir'));
    expect(d.code).toBe(1);
    expect(d.err).toBe(`coapfw keygen: ${p('a-dir')}: is a directory; --out names the private key file (the public key goes to FILE.pub) [IO_ERROR]\n`);
    const again = await run('keygen', '--out', p('oem.key'));
    expect(again.err).toBe(`coapfw keygen: ${p('oem.key')}: already exists (--force replaces it) [IO_ERROR]\n`);
    await writeFile(p('only.key.pub'), 'old public key\n');
    const pubInTheWay = await run('keygen', '--out', p('only.key'));
    expect(pubInTheWay.err).toMatch(/only\.key\.pub: already exists/);
    expect((await run('keygen', '--out', p('only.key'), '--force')).code).toBe(0);
  });
});
