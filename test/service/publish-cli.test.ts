/**
 * `coapfw publish`: into a served directory (atomic, racing publishers), into
 * a database (with the devices' commands), and to a server over coaps.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { Code } from '../../src/codec/numbers.js';
import { openStore } from '../../src/service/open.js';
import { publishToDirectory } from '../../src/service/publish-dir.js';
import { decodeEnvelope } from '../../src/suit/decode.js';
import { privateKeyToPem, publicKeyToPem } from '../../src/suit/keys.js';
import { captureIo } from '../helpers/cli-io.js';
import { bytes, CLASS, VENDOR } from './fixtures.js';
import { SqliteHarness } from './harness.js';
import { call, reg, signedRelease, SIGNER, startService, STRANGER } from './service-harness.js';

let work: string;
let keyFile: string;
let image: string;
const uuid = (hex: string): string => `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
const ids = ['--vendor', uuid(VENDOR), '--class', uuid(CLASS)];
const imageBytes = bytes(9000, 42);

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'coapfw-publish-'));
  keyFile = join(work, 'oem.key');
  await writeFile(keyFile, privateKeyToPem(SIGNER));
  await writeFile(join(work, 'oem.key.pub'), publicKeyToPem(SIGNER.publicKey));
  await writeFile(join(work, 'stranger.pub'), publicKeyToPem(STRANGER.publicKey));
  image = join(work, 'app.bin');
  await writeFile(image, imageBytes);
});
afterAll(() => rm(work, { recursive: true, force: true }));

async function publish(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = captureIo();
  const code = await main(['publish', image, '--key', keyFile, ...ids, ...args], c.io);
  return { code, out: c.out(), err: c.err() };
}

describe('coapfw publish --dir', () => {
  it('writes <class>/<seq>.suit, latest.suit and the image by content, and --bump takes the next sequence', async () => {
    const dir = join(work, 'served');
    const first = await publish(['--dir', dir, '--bump', '--json']);
    expect(first.code, first.err).toBe(0);
    const r1 = JSON.parse(first.out) as Record<string, unknown>;
    expect(r1).toMatchObject({ result: 'published', class: CLASS, seq: 1, image: bytesToHex(sha256(imageBytes)), latest: true });
    expect((await publish(['--dir', dir, '--bump'])).code).toBe(0);
    const files = readdirSync(join(dir, CLASS)).sort();
    expect(files).toEqual(['1.suit', '2.suit', `${bytesToHex(sha256(imageBytes))}.bin`, 'latest.suit'].sort()); // no temporary names left
    expect(decodeEnvelope(await readFile(join(dir, CLASS, 'latest.suit'))).manifest.sequenceNumber).toBe(2n);
    expect(new Uint8Array(await readFile(join(dir, CLASS, `${bytesToHex(sha256(imageBytes))}.bin`)))).toEqual(imageBytes);
    const lower = await publish(['--dir', dir, '--seq', '1']);
    expect(lower.code).toBe(1);
    expect(lower.err).toMatch(/1\.suit exists \[ALREADY_EXISTS\]/);
    const untrusted = await publish(['--dir', dir, '--seq', '9', '--trust', join(work, 'stranger.pub')]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.err).toMatch(/do not verify with any trusted key .*\[SIGNATURE_INVALID\]/);
    expect(existsSync(join(dir, CLASS, '9.suit'))).toBe(false);
  });

  it('two publishers racing for one sequence: exactly one envelope is written, the other gets ALREADY_EXISTS', async () => {
    const dir = join(work, 'race');
    const trust = { anchors: [{ name: 'oem', publicKey: SIGNER.publicKey }] };
    const a = signedRelease(4, SIGNER, bytes(3000, 1));
    const b = signedRelease(4, SIGNER, bytes(3000, 2));
    const results = await Promise.allSettled([publishToDirectory(dir, a.envelope, [a.image], { trust }), publishToDirectory(dir, b.envelope, [b.image], { trust })]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(lost.reason).toMatchObject({ code: 'ALREADY_EXISTS' });
    const winner = results[0]!.status === 'fulfilled' ? a : b;
    expect(new Uint8Array(await readFile(join(dir, CLASS, '4.suit')))).toEqual(winner.envelope);
    expect(new Uint8Array(await readFile(join(dir, CLASS, 'latest.suit')))).toEqual(winner.envelope);
    expect(readdirSync(join(dir, CLASS)).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});

describe('coapfw publish --db', () => {
  it('publishes into the database with the server checks, and opens the commands of server-initiated devices', async () => {
    const db = `sqlite:${join(work, 'fleet.db')}`;
    const store = await openStore(db);
    await store.registerDevice({ id: 'dev-a', vendorId: VENDOR, classId: CLASS, installedSeq: 0, mode: 'server' });
    await store.close();
    const r = await publish(['--db', db, '--seq', '3', '--urgency', 'critical', '--downtime', '20', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ result: 'published', seq: 3, uploaded: true });
    const again = await publish(['--db', db, '--seq', '3']);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/ALREADY_EXISTS/);
    const check = await openStore(db);
    try {
      const rel = (await check.latestRelease(CLASS))!;
      expect(rel).toMatchObject({ sequence: 3, urgency: 'critical', downtimeS: 20, images: [{ component: 0, sha256: bytesToHex(sha256(imageBytes)), size: 9000 }] });
      expect(await check.openCommand('dev-a')).toMatchObject({ kind: 'update', sequence: 3 });
    } finally {
      await check.close();
    }
  });
});

describe('coapfw publish --server', () => {
  it('uploads the image block-wise over coaps, then the release; the second time the image is already there', async () => {
    const h = new SqliteHarness();
    const svc = await startService(h);
    try {
      const plain = await svc.plain();
      await call(plain, Code.POST, '/d/n-1', reg('negotiated', 0));
      const creds = ['--psk-identity', 'ci-release', '--psk-key', `0x${'09'.repeat(16)}`];
      const first = await publish(['--server', svc.coapsUrl, ...creds, '--bump', '--block-size', '256', '--json']);
      expect(first.code, first.err).toBe(0);
      expect(JSON.parse(first.out)).toMatchObject({ result: 'published', class: CLASS, seq: 1, uploaded: true });
      const second = await publish(['--server', svc.coapsUrl, ...creds, '--bump', '--json']);
      expect(JSON.parse(second.out)).toMatchObject({ seq: 2, uploaded: false });
      expect((await call(plain, Code.GET, '/d/n-1/c')).map).toMatchObject({ op: 'offer', seq: 2 });
      const refused = await publish(['--server', svc.coapUrl, '--seq', '3']);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/4\.03: publish: only over coaps/);
      const noKey = await publish(['--server', svc.coapsUrl, '--psk-identity', 'dev-1', '--psk-key', `0x${'01'.repeat(16)}`, '--seq', '3']);
      expect(noKey.err).toMatch(/4\.03: publish: identity 'dev-1' has no publisher role/);
    } finally {
      await svc.close();
      await h.cleanup();
    }
  });

  it('usage: one destination, --seq or --bump, a known urgency', async () => {
    expect((await publish(['--seq', '1'])).err).toMatch(/say where to publish/);
    expect((await publish(['--dir', work, '--db', 'x'])).err).toMatch(/give one destination/);
    expect((await publish(['--dir', work])).err).toMatch(/give --seq N or --bump/);
    expect((await publish(['--dir', work, '--seq', '1', '--bump'])).err).toMatch(/contradict/);
    expect((await publish(['--dir', work, '--seq', '1', '--urgency', 'asap'])).code).toBe(2);
  });
});
