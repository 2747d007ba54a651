import { afterAll, describe, expect, test } from 'vitest';
import { chmodSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { main } from '../../src/cli/main.js';
import { decodeEnvelope, parsePrivateKey, parsePublicKey, signSign1 } from '../../src/suit/index.js';
import { bstr, encodeCbor, tagged } from '../../src/suit/cbor.js';
import { FIXTURES, fixture, hex } from '../suit/helpers.js';

function fakeIo(): { io: { stdout: Writable; stderr: Writable }; out: () => string; err: () => string } {
  let o = '';
  let e = '';
  const stdout = new Writable({ write(c, _e, cb) { o += String(c); cb(); } });
  const stderr = new Writable({ write(c, _e, cb) { e += String(c); cb(); } });
  return { io: { stdout, stderr }, out: () => o, err: () => e };
}

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const f = fakeIo();
  const code = await main(argv, f.io);
  return { code, out: f.out(), err: f.err() };
}

const dir = mkdtempSync(join(tmpdir(), 'coapfw-suit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const wg = (f: string): string => join(FIXTURES, 'wg', f);
const ed = (f: string): string => join(FIXTURES, 'eddsa', f);

describe('coapfw keygen', () => {
  test('writes a 0600 PEM private key and a public key OpenSSL-compatible', async () => {
    const key = join(dir, 'k1');
    const r = await run('keygen', '--out', key);
    expect(r.code).toBe(0);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    const priv = parsePrivateKey(readFileSync(key, 'utf8'));
    const pub = parsePublicKey(readFileSync(`${key}.pub`, 'utf8'));
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(hex(priv.publicKey.bytes)).toBe(hex(pub.bytes));
    expect(r.out).toContain(hex(pub.bytes));
    // No silent overwrite.
    const again = await run('keygen', '--out', key);
    expect(again.code).toBe(1);
    expect(again.err.trim().split('\n')).toHaveLength(1);
    expect((await run('keygen', '--out', key, '--force')).code).toBe(0);
  });
  test('--force replaces an existing 0644 key file by rename: the secret never goes into the old file', async () => {
    const key = join(dir, 'kforce');
    writeFileSync(key, 'old contents\n', { mode: 0o644 });
    chmodSync(key, 0o644);
    linkSync(key, `${key}.link`); // another name for the old file (inode)
    const before = statSync(key).ino;
    const r = await run('keygen', '--out', key, '--force');
    expect(r.code, r.err).toBe(0);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(statSync(key).ino).not.toBe(before);
    expect(readFileSync(`${key}.link`, 'utf8')).toBe('old contents\n');
    expect(readFileSync(key, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
  test('COSE_Key format', async () => {
    const key = join(dir, 'kc');
    expect((await run('keygen', '-o', key, '--format', 'cose')).code).toBe(0);
    const priv = parsePrivateKey(new Uint8Array(readFileSync(key)));
    expect(hex(parsePublicKey(new Uint8Array(readFileSync(`${key}.pub`))).bytes)).toBe(hex(priv.publicKey.bytes));
  });
  test('--help exits 0, a missing --out is a usage error', async () => {
    expect((await run('keygen', '--help')).out).toContain('PKCS#8');
    expect((await run('keygen')).code).toBe(2);
  });
});

describe('coapfw manifest', () => {
  test('create example1.json -> same manifest as the WG example 1, verifies with the key', async () => {
    const key = join(dir, 'sign');
    await run('keygen', '--out', key);
    const out = join(dir, 'ex1.suit');
    const r = await run('manifest', 'create', wg('example1.json'), '--key', key, '-o', out);
    expect(r.code, r.err).toBe(0);
    const ours = decodeEnvelope(new Uint8Array(readFileSync(out)));
    expect(hex(ours.manifestBytes)).toBe(hex(decodeEnvelope(fixture('wg/example1.unsigned.cbor')).manifestBytes));
    expect(ours.signatures.map((s) => s.alg)).toEqual([-19]);
    const v = await run('manifest', 'verify', out, '--trust', `${key}.pub`, '--installed-seq', '0',
      '--vendor-id', 'fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe', '--class-id', '1492af1425695e48bf429b2d51f2ab45');
    expect(v.code, v.err).toBe(0);
    expect(v.out).toMatch(/^OK: .*sequence 1, signed by \S*sign\.pub/);
  });

  test('two signers, --require-all', async () => {
    const a = join(dir, 'oem');
    const b = join(dir, 'operator');
    await run('keygen', '--out', a);
    await run('keygen', '--out', b);
    const one = join(dir, 'one.suit');
    const two = join(dir, 'two.suit');
    expect((await run('manifest', 'create', wg('example5.json'), '-k', a, '-o', one)).code).toBe(0);
    expect((await run('manifest', 'create', wg('example5.json'), '-k', a, '-k', b, '-o', two)).code).toBe(0);
    expect((await run('manifest', 'verify', two, '-t', `${a}.pub`, '-t', `${b}.pub`, '--require-all')).code).toBe(0);
    const r = await run('manifest', 'verify', one, '-t', `${a}.pub`, '-t', `${b}.pub`, '--require-all');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/signature: .*'[^']*operator\.pub'.*\[NO_SIGNATURE\]/);
    // The operator countersigns the OEM's envelope later.
    const counter = join(dir, 'counter.suit');
    expect((await run('manifest', 'sign', one, '-k', b, '-o', counter)).code).toBe(0);
    expect((await run('manifest', 'verify', counter, '-t', `${a}.pub`, '-t', `${b}.pub`, '--require-all')).code).toBe(0);
    expect(hex(decodeEnvelope(new Uint8Array(readFileSync(counter))).manifestBytes)).toBe(hex(decodeEnvelope(new Uint8Array(readFileSync(one))).manifestBytes));
  });

  test('sign refuses a wrapper digest of another manifest; --trust checks existing signatures first', async () => {
    const a = join(dir, 'oem2');
    const b = join(dir, 'op2');
    await run('keygen', '--out', a);
    await run('keygen', '--out', b);
    const one = join(dir, 'one2.suit');
    const other = join(dir, 'other2.suit');
    expect((await run('manifest', 'create', wg('example1.json'), '-k', a, '-o', one)).code).toBe(0);
    expect((await run('manifest', 'create', wg('example5.json'), '-k', a, '-o', other)).code).toBe(0);
    // Splice: the authentication wrapper of `other` with the manifest of `one`.
    const d1 = decodeEnvelope(new Uint8Array(readFileSync(one)));
    const d2 = decodeEnvelope(new Uint8Array(readFileSync(other)));
    const trick = join(dir, 'trick.suit');
    writeFileSync(trick, encodeCbor(tagged(107, new Map([[2, bstr(encodeCbor([bstr(d2.digestBytes), bstr(signSign1(d2.digestBytes, parsePrivateKey(readFileSync(a, 'utf8'))))]))], [3, bstr(d1.manifestBytes)]]))));
    const r = await run('manifest', 'sign', trick, '-k', b, '-o', join(dir, 'x.suit'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('DIGEST_MISMATCH');
    // --trust: the OEM signature must verify before the operator signs.
    const ok = await run('manifest', 'sign', one, '-k', b, '-t', `${a}.pub`, '-o', join(dir, 'y.suit'));
    expect(ok.code, ok.err).toBe(0);
    const bad = await run('manifest', 'sign', one, '-k', b, '-t', `${b}.pub`, '-o', join(dir, 'z.suit'));
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('SIGNATURE_INVALID');
  });

  test('verify --require-all: anchors with the same base name in different folders are two parties', async () => {
    mkdirSync(join(dir, 'oemdir'));
    mkdirSync(join(dir, 'opdir'));
    const a = join(dir, 'oemdir', 'key');
    const b = join(dir, 'opdir', 'key');
    await run('keygen', '--out', a);
    await run('keygen', '--out', b);
    const one = join(dir, 'same-name.suit');
    expect((await run('manifest', 'create', wg('example1.json'), '-k', a, '-o', one)).code).toBe(0);
    const r = await run('manifest', 'verify', one, '-t', `${a}.pub`, '-t', `${b}.pub`, '--require-all');
    expect(r.code).toBe(1);
    expect(r.err).toContain('[NO_SIGNATURE]');
    expect(r.err).toContain('opdir');
    const twice = await run('manifest', 'verify', one, '-t', `${a}.pub`, '-t', `${a}.pub`, '--require-all');
    expect(twice.code).toBe(2);
  });

  test('create with "file": digest and size computed from the image', async () => {
    copyFileSync(ed('firmware.bin'), join(dir, 'fw.bin'));
    const input = join(dir, 'fw.json');
    writeFileSync(input, JSON.stringify({
      'manifest-sequence-number': 12,
      components: [{ 'install-id': ['00'], file: 'fw.bin', uri: 'coap://[::1]/fw/x', 'vendor-id': 'fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'class-id': '1492af1425695e48bf429b2d51f2ab45' }],
    }));
    const out = join(dir, 'fw.suit');
    expect((await run('manifest', 'create', input, '-k', ed('ed25519_seed_TEST_ONLY.hex'), '-o', out)).code).toBe(0);
    const r = await run('manifest', 'inspect', out, '--json');
    const s = JSON.parse(r.out) as { sequenceNumber: number; images: { digest: { hex: string }; size: number; uri: string }[] };
    expect(s.sequenceNumber).toBe(12);
    expect(s.images[0]).toMatchObject({ size: 5000, uri: 'coap://[::1]/fw/x', digest: { hex: '243fa4952dccf8667f6008cca401cb010cf748d434061f4f411775fd69a11513' } });
  });

  test('create --sever install: the digest stays in the manifest, the bytes in the envelope', async () => {
    const out = join(dir, 'sev.suit');
    expect((await run('manifest', 'create', wg('example1.json'), '-k', ed('ed25519_seed_TEST_ONLY.hex'), '--sever', 'install', '-o', out)).code).toBe(0);
    const s = JSON.parse((await run('manifest', 'inspect', out, '--json')).out) as { severed: string[]; images: unknown[] };
    expect(s.severed).toEqual(['install']);
    expect(s.images).toHaveLength(1);
    expect((await run('manifest', 'verify', out, '-t', ed('ed25519_public.hex'))).code).toBe(0);
    expect((await run('manifest', 'create', wg('example1.json'), '-k', ed('ed25519_seed_TEST_ONLY.hex'), '--sever', 'bogus', '-o', out)).code).toBe(2);
  });

  test('inspect: human-readable and --json for WG example 3 (both slots)', async () => {
    const h = await run('manifest', 'inspect', wg('example3.signed.cbor'));
    expect(h.code).toBe(0);
    expect(h.out).toContain('sequence number: 3');
    expect(h.out).toContain('http://example.com/file2.bin');
    expect(h.out).toContain('not verified');
    expect(h.out).toContain('vendor id:       fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe');
    const j = JSON.parse((await run('manifest', 'inspect', wg('example3.signed.cbor'), '--json')).out) as {
      sequenceNumber: number; components: string[][]; images: { slot: number; uri: string; size: number; digest: { hex: string } }[];
    };
    expect(j.sequenceNumber).toBe(3);
    expect(j.components).toEqual([['00']]);
    expect(j.images.map((i) => [i.slot, i.uri, i.size])).toEqual([[0, 'http://example.com/file1.bin', 34768], [1, 'http://example.com/file2.bin', 76834]]);
  });

  test('verify: WG key and vectors; each failure is one line naming the check', async () => {
    expect((await run('manifest', 'verify', wg('example2.signed.cbor'), '--trust', wg('public_key.pem'))).code).toBe(0);
    expect((await run('manifest', 'verify', ed('ed25519-alg-19.suit'), '--trust', ed('ed25519_public.hex'))).code).toBe(0);
    const cases: [string[], RegExp][] = [
      [[ed('rollback-seq6.suit'), '--trust', ed('ed25519_public.pem'), '--installed-seq', '7'], /anti-rollback.*\[ROLLBACK\]/],
      [[ed('NEG-bad-signature.suit'), '--trust', ed('ed25519_public.pem')], /signature.*\[SIGNATURE_INVALID\]/],
      [[ed('NEG-digest-mismatch.suit'), '--trust', ed('ed25519_public.pem')], /manifest digest.*\[DIGEST_MISMATCH\]/],
      [[ed('NEG-no-auth-block.suit'), '--trust', ed('ed25519_public.pem')], /no signature.*\[NO_SIGNATURE\]/],
      [[ed('ed25519-alg-19.suit'), '--trust', wg('public_key.pem')], /\[UNTRUSTED_KEY\]/],
      [[ed('ed25519-alg-19.suit'), '--trust', ed('ed25519_public.pem'), '--vendor-id', '00112233445566778899aabbccddeeff'], /vendor.*\[VENDOR_MISMATCH\]/],
      [[ed('ed25519-alg-19.suit'), '--trust', ed('ed25519_public.pem'), '--class-id', '00112233445566778899aabbccddeeff'], /class.*\[CLASS_MISMATCH\]/],
    ];
    for (const [args, re] of cases) {
      const r = await run('manifest', 'verify', ...args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.err).toMatch(re);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.out).toBe('');
    }
  });

  test('usage errors and bad files', async () => {
    expect((await run('manifest', '--help')).code).toBe(0);
    expect((await run('manifest', 'verify', '--help')).out).toContain('--installed-seq');
    expect((await run('manifest', 'verify', wg('example1.signed.cbor'))).code).toBe(2);
    expect((await run('manifest', 'verify', wg('example1.signed.cbor'), '-t', wg('public_key.pem'), '--installed-seq', '-1')).code).toBe(2);
    expect((await run('manifest', 'frobnicate')).code).toBe(2);
    const garbage = join(dir, 'garbage.suit');
    writeFileSync(garbage, Buffer.from('not cbor at all'));
    const r = await run('manifest', 'inspect', garbage);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/\[SUIT_MALFORMED\]/);
    const badKey = await run('manifest', 'verify', garbage, '-t', garbage);
    expect(badKey.err).toMatch(/garbage\.suit: .*\[KEY_INVALID\]/);
  });
});
