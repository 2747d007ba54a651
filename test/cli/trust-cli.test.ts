/**
 * `coapfw trust ...` end to end, in-process: keys, a trust set in JSON, the
 * state a device is provisioned with, a rotation signed one party at a time,
 * a revocation list, a server serving them from DIR/.trust/, a simulated
 * device taking them before it installs the release of the new key, an
 * owner transfer handed over directly, and the one-line errors.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { captureIo } from '../helpers/cli-io.js';

let dir: string;
let server: FileServer;
let source: string;
const p = (f: string): string => join(dir, f);
const VENDOR = 'fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe';
const CLASS = '1492af14-2569-5e48-bf42-9b2d51f2ab45';
const IMG = new Uint8Array(6000).map((_, i) => (i * 7) & 0xff);

async function run(...args: string[]) {
  const c = captureIo();
  const code = await main(args, c.io);
  return { code, out: c.out(), err: c.err(), json: () => JSON.parse(c.out().trim().split('\n').at(-1)!) as Record<string, unknown> };
}

const setJson = (version: number, firmwareKey: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    version,
    source,
    anchors: { integrator: 'integrator.key.pub', [firmwareKey]: `${firmwareKey}.key.pub` },
    roles: [
      { name: 'trust', scope: 'trust', signers: ['integrator'] },
      { name: 'firmware', scope: { 'vendor-id': VENDOR }, signers: [firmwareKey], threshold: 1 },
    ],
    ...extra,
  });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-trust-cli-'));
  await mkdir(p('srv/.trust'), { recursive: true });
  server = await startFileServer({ dir: p('srv'), host: '127.0.0.1', port: 0, refreshMs: 0 });
  source = `coap://127.0.0.1:${server.address().port}`;
  for (const k of ['integrator', 'vendor', 'vendor2', 'owner', 'stranger', 'community']) expect((await run('keygen', '--out', p(`${k}.key`))).code).toBe(0);
  await writeFile(p('set.json'), setJson(1, 'vendor'));
  await writeFile(p('set2.json'), setJson(2, 'vendor2'));
  await writeFile(p('srv/app.bin'), IMG);
  await writeFile(p('srv/app.json'), JSON.stringify({ 'manifest-version': 1, 'manifest-sequence-number': 3, components: [{ 'install-id': ['00'], 'vendor-id': VENDOR, 'class-id': CLASS, file: 'app.bin' }] }));
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('coapfw trust', () => {
  it('init, update + sign one party at a time, revoke, serve, and a device takes them before installing the new key\'s release', { timeout: 60_000 }, async () => {
    const init = await run('trust', 'init', p('set.json'), '--owner', p('owner.key.pub'), '-o', p('state.cbor'));
    expect(init.code, init.err).toBe(0);
    expect(init.out).toMatch(/^wrote .*state\.cbor: trust version 1, 2 anchors, 2 roles, owner [0-9a-f]{64}\n$/);
    const key = (await run('trust', 'inspect', p('vendor.key.pub'), '--json')).json();
    expect(key).toMatchObject({ type: 'public key', keyType: 'ed25519', thumbprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const state = (await run('trust', 'inspect', p('state.cbor'), '--json')).json();
    expect(state).toMatchObject({ type: 'trust state', version: 1, source, revocation: { sequence: 0, revoked: [] } });
    expect((state.anchors as { name: string; thumbprint: string }[]).find((a) => a.name === 'vendor')?.thumbprint).toBe(key.thumbprint);

    // The vendor rotates its key: an unsigned update, then the old and the new key sign in turn.
    expect((await run('trust', 'update', p('set2.json'), '-o', p('upd.cftr'))).code).toBe(0);
    expect((await run('trust', 'sign', p('upd.cftr'), '-k', p('vendor.key'), '-o', p('upd.cftr'))).code).toBe(0);
    const signed = await run('trust', 'sign', p('upd.cftr'), '-k', p('vendor2.key'), '-o', p('upd.cftr'));
    expect(signed.out).toMatch(/1 signature\(s\) added/);
    expect(((await run('trust', 'inspect', p('upd.cftr'), '--json')).json().signatures as unknown[]).length).toBe(2);
    // The old key is revoked by the integrator (the trust role).
    expect((await run('trust', 'revoke', '--sequence', '1', '--revoke', p('vendor.key.pub'), '-k', p('integrator.key'), '-o', p('rev.cftr'))).code).toBe(0);
    expect((await run('trust', 'inspect', p('rev.cftr'))).out).toMatch(new RegExp(`revocation list \\(not verified\\)[\\s\\S]*revoked: +${String(key.thumbprint)}`));
    await writeFile(p('srv/.trust/rotation-2.cftr'), await readFile(p('upd.cftr')));
    await writeFile(p('srv/.trust/revocation-1.cftr'), await readFile(p('rev.cftr')));
    await server.trust!.reload();

    // The release is signed by the new key, its kid the key's thumbprint.
    expect((await run('manifest', 'create', p('srv/app.json'), '--key', p('vendor2.key'), '-o', p('srv/app.suit'))).code).toBe(0);
    await server.repo.refresh();
    const kid = (await run('trust', 'inspect', p('vendor2.key.pub'), '--json')).json().thumbprint;
    expect((JSON.parse((await run("manifest", "inspect", p("srv/app.suit"), "--json")).out) as { signatures: { kid: string }[] }).signatures[0]!.kid).toBe(kid);

    const upd = await run('device', 'update', `${source}/files/app.suit`, '--flash', p('dev.bin'), '--trust-state', p('state.cbor'), '--vendor-id', VENDOR, '--class-id', CLASS, '--flash-size', String(256 * 1024));
    expect(upd.code, upd.err).toBe(0);
    expect(upd.json()).toMatchObject({ result: 'installed', installedSequence: 3, trustVersion: 2, revocationSequence: 1, boot: 'confirmed', trustProvisioned: true, running: Buffer.from(sha256(IMG)).toString('hex') });
    const onDevice = (await run('trust', 'inspect', '--flash', p('dev.bin'), '--json')).json();
    expect(onDevice).toMatchObject({ version: 2, revocation: { sequence: 1, revoked: [key.thumbprint] } });
    expect((await run('device', 'status', '--flash', p('dev.bin'))).json()).toMatchObject({ trust: { provisioned: true, version: 2, revocationSequence: 1, source } });

    // --trust on a provisioned device is not used: a note says so.
    const again = await run('device', 'update', `${source}/files/app.suit`, '--flash', p('dev.bin'), '--trust', p('stranger.key.pub'), '--vendor-id', VENDOR, '--class-id', CLASS);
    expect(again.json()).toMatchObject({ result: 'up-to-date', trustVersion: 2 });
    expect(again.err).toMatch(/note: the trust store is already provisioned \(trust version 2\)/);
  });

  it('an owner transfer handed over directly; a stranger\'s is refused in one line; chains; provisioning again needs --force', async () => {
    expect((await run('trust', 'init', p('set.json'), '--owner', p('owner.key.pub'), '--flash', p('dev2.bin'))).code).toBe(0);
    await writeFile(p('community.json'), JSON.stringify({ version: 10, anchors: { community: 'community.key.pub' }, roles: [{ name: 'all', scope: 'any-component', signers: ['community'] }, { name: 'trust', scope: 'trust', signers: ['community'] }] }));
    expect((await run('trust', 'transfer', '--owner-key', p('stranger.key'), '--set', p('community.json'), '-o', p('evil.cftr'))).code).toBe(0);
    const evil = await run('trust', 'apply', p('evil.cftr'), '--flash', p('dev2.bin'));
    expect(evil.code).toBe(1);
    expect(evil.err).toMatch(/^coapfw trust: .*not signed by the device's owner key \[NOT_OWNER\]\n$/);
    const t = await run('trust', 'transfer', '--owner-key', p('owner.key'), '--set', p('community.json'), '--source', 'coap://community.example', '-o', p('t.cftr'));
    expect(t.code, t.err).toBe(0);
    expect(t.out).toMatch(/owner transfer to trust version 10 \(1 anchors, 2 roles, source coap:\/\/community\.example\)/);
    const applied = await run('trust', 'apply', p('t.cftr'), '--flash', p('dev2.bin'), '--json');
    expect(applied.code, applied.err).toBe(0);
    expect(applied.json()).toMatchObject({ trustVersion: 10, changed: true, source: 'coap://community.example', applied: [{ kind: 'owner transfer', version: 10, changed: true }] });
    expect((await run('trust', 'apply', p('t.cftr'), '--flash', p('dev2.bin'))).code).toBe(1); // not newer: TRUST_ROLLBACK

    expect((await run('trust', 'chain', p('upd.cftr'), p('t.cftr'), '-o', p('chain.cbor'))).code).toBe(0);
    expect(((await run('trust', 'inspect', p('chain.cbor'), '--json')).json().documents as { type: string }[]).map((d) => d.type)).toEqual(['trust update', 'owner transfer']);
    const wrong = await run('trust', 'chain', p('rev.cftr'), '-o', p('x.cbor'));
    expect([wrong.code, wrong.err]).toEqual([1, expect.stringMatching(/revocation list does not belong in a trust chain \[DOCUMENT_TYPE\]/)]);

    const twice = await run('trust', 'init', p('set.json'), '--owner', p('owner.key.pub'), '--flash', p('dev2.bin'));
    expect([twice.code, twice.err]).toEqual([1, expect.stringMatching(/the trust store is provisioned \(trust version 10\); --force .*\[ALREADY_EXISTS\]\n$/)]);
    expect((await run('trust', 'init', p('set.json'), '--flash', p('dev2.bin'), '--force')).code).toBe(0);
    expect((await run('trust', 'inspect', '--flash', p('dev2.bin'))).out).toMatch(/owner: +none \(ownership cannot be transferred\)/);
  });

  it('help per command, usage errors exit 2 in one line, a typo in the JSON names the closest key', async () => {
    const help = await run('trust', 'revoke', '--help');
    expect([help.code, help.out]).toEqual([0, expect.stringMatching(/^usage: coapfw trust revoke --sequence N/)]);
    expect((await run('trust', '--help')).out).toMatch(/coapfw trust init[\s\S]*coapfw trust apply/);
    expect((await run('help', 'trust')).code).toBe(0);
    for (const args of [['trust', 'frob'], ['trust', 'update', p('set.json')], ['trust', 'revoke', '-o', p('r.cftr')], ['trust', 'init', p('set.json')], ['trust', 'inspect', p('set.json'), '--flash', p('dev.bin')]]) {
      const r = await run(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(/^coapfw trust: .*\(see 'coapfw trust --help'\)\n$/);
    }
    await writeFile(p('typo.json'), JSON.stringify({ version: 1, anchors: {}, roles: [{ name: 'x', scope: 'trust', signer: ['a'] }] }));
    const typo = await run('trust', 'init', p('typo.json'), '-o', p('t.cbor'));
    expect([typo.code, typo.err]).toEqual([1, expect.stringMatching(/typo\.json: roles\[0\]: unknown key "signer" \(did you mean "signers"\?\) \[INVALID_ARGUMENT\]\n$/)]);
    await writeFile(p('badrole.json'), setJson(1, 'vendor', { roles: [{ name: 'trust', scope: 'trust', signers: ['nobody'] }] }));
    const bad = await run('trust', 'init', p('badrole.json'), '-o', p('t.cbor'));
    expect([bad.code, bad.err]).toEqual([1, expect.stringMatching(/badrole\.json: .*no anchor named 'nobody' \[INVALID_ARGUMENT\]\n$/)]);
    const notDoc = await run('trust', 'inspect', p('set.json'));
    expect(notDoc.code).toBe(1);
    expect(notDoc.err.trim().split('\n')).toHaveLength(1);
  });

  it('a new device without --trust or --trust-state is a usage error; one without a provisioned trust store reports TRUST_NOT_PROVISIONED', async () => {
    const r = await run('device', 'update', `${source}/files/app.suit`, '--flash', p('new.bin'));
    expect([r.code, r.err]).toEqual([2, expect.stringMatching(/a new device needs --trust PUBFILE or --trust-state FILE/)]);
    expect((await run('device', 'boot', '--flash', p('bare.bin'))).code).toBe(0); // provisioned images, no trust
    const bare = await run('device', 'update', `${source}/files/app.suit`, '--flash', p('bare.bin'), '--no-report');
    expect(bare.code).toBe(1);
    expect(bare.json()).toMatchObject({ result: 'failed', error: 'TRUST_NOT_PROVISIONED' });
  });
});
