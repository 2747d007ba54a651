/**
 * Interop of the update service with libcoap 4.3.1 and node-coap 1.5:
 * - `coap-client-notls -m post -b 64` registers a device and uploads a
 *   multi-block report (libcoap adds Block1, Size1 and a Request-Tag);
 * - `coap-client-openssl -m put -b 64` uploads a 64 KiB image over coaps as
 *   a publisher identity (plain CoAP never publishes), then posts the
 *   release body: libcoap publishes a release end to end;
 * - `coap-client-notls -s` observes a device's command resource and sees
 *   the op:update the server sets after a release;
 * - node-coap's Agent uploads a report block-wise (its segmented sender),
 *   and is refused a blob upload over plain CoAP at the first block.
 * Everything is checked in the database and by SHA-256, never by exit codes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodeCbor } from '../src/suit/cbor.js';
import { startUpdateServer, type UpdateServer } from '../src/service/update-server.js';
import { openStore } from '../src/service/open.js';
import { PskStore } from '../src/transport/dtls/psk-store.js';
import { bytes, CLASS, VENDOR } from '../test/service/fixtures.js';
import { signedRelease, SIGNER } from '../test/service/service-harness.js';
import { COAP_CLIENT, describeWithBinaries, killAll, run, sha256Hex, startDaemon } from './helpers.js';

const PUBLISHER = 'interop-publisher';
const KEY_TEXT = 'interop-secret-0'; // libcoap 4.3.1 takes -k as text
const OPENSSL = 'coap-client-openssl';
const missing = [COAP_CLIENT, OPENSSL].filter((c) => spawnSync(c, ['-h'], { stdio: 'ignore', timeout: 5000 }).error !== undefined);

describeWithBinaries('update service with libcoap and node-coap', missing.length === 0 ? undefined : `${missing.join(', ')} not found (apt-get install libcoap3-bin)`, () => {
  let work: string;
  let server: UpdateServer;
  let coap: string;
  let coaps: string;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'coapfw-svc-interop-'));
    const psk = PskStore.fromEntries([[PUBLISHER, new TextEncoder().encode(KEY_TEXT), ['publisher']]]);
    server = await startUpdateServer({
      dir: work,
      store: await openStore(`sqlite:${join(work, 'fleet.db')}`),
      host: '127.0.0.1',
      port: 0,
      refreshMs: 0,
      secure: { psk, host: '127.0.0.1', port: 0 },
      openRegistration: true,
      releaseTrust: { anchors: [{ name: 'oem', publicKey: SIGNER.publicKey }] },
      modes: { tickMs: 100, normalWindowS: 0 },
    });
    coap = `coap://127.0.0.1:${server.address().port}`;
    coaps = `coaps://127.0.0.1:${server.dtls!.address().port}`;
  });

  afterAll(async () => {
    killAll();
    await server?.close();
    await server?.store.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('coap-client-notls registers a device and posts a report in 64-byte blocks (Block1)', { timeout: 60_000 }, async () => {
    await writeFile(join(work, 'reg.json'), JSON.stringify({ vendor: VENDOR, class: CLASS, seq: 1, mode: 'server' }));
    const detail = 'flash write failed at erase block 17 after the radio dropped '.repeat(3);
    await writeFile(join(work, 'report.json'), JSON.stringify({ rseq: 1, state: 'failed', seq: 2, detail }));
    const r1 = await run(COAP_CLIENT, ['-m', 'post', '-t', '50', '-f', join(work, 'reg.json'), '-B', '20', `${coap}/d/lab-1`]);
    expect(r1.stdout, r1.stderr).toContain('"cmd":"/d/lab-1/c"');
    const before = server.endpoint.stats.received;
    const r2 = await run(COAP_CLIENT, ['-m', 'post', '-b', '64', '-t', '50', '-f', join(work, 'report.json'), '-B', '20', `${coap}/d/lab-1/r`]);
    expect(r2.stdout, r2.stderr).toContain('"rseq":1');
    expect(server.endpoint.stats.received - before).toBeGreaterThanOrEqual(Math.ceil((await readFile(join(work, 'report.json'))).length / 64));
    const device = (await server.store.getDevice('lab-1'))!;
    expect(device).toMatchObject({ state: 'failed', detail, reportSeq: 1 });
    expect((await server.store.listHistory('lab-1'))[0]).toMatchObject({ transition: 'failed', detail });
  });

  it('coap-client-openssl uploads a 64 KiB image in 64-byte blocks over coaps and publishes the release', { timeout: 120_000 }, async () => {
    const r = signedRelease(2, SIGNER, bytes(64 * 1024, 9));
    await writeFile(join(work, 'image.bin'), r.image);
    await writeFile(join(work, 'release.cbor'), encodeCbor(new Map<string, unknown>([['envelope', Buffer.from(r.envelope)], ['urgency', 'critical']])));
    const creds = ['-u', PUBLISHER, '-k', KEY_TEXT];
    const put = await run(OPENSSL, [...creds, '-m', 'put', '-b', '64', '-f', join(work, 'image.bin'), '-B', '90', `${coaps}/pub/blob/${r.imageHex}`], 100_000);
    expect(server.staging.get(r.imageHex), `${put.stdout}${put.stderr}`).toBeDefined();
    const post = await run(OPENSSL, [...creds, '-m', 'post', '-b', '64', '-t', '60', '-f', join(work, 'release.cbor'), '-B', '30', `${coaps}/pub/release`]);
    const release = await server.store.getRelease(CLASS, 2);
    expect(release, `${post.stdout}${post.stderr}`).toMatchObject({ sequence: 2, urgency: 'critical', envelopeSha256: r.envelopeHex, images: [{ sha256: r.imageHex, size: 65536 }] });
    // What libcoap uploaded is what devices get.
    const out = join(work, 'fetched.bin');
    await run(COAP_CLIENT, ['-m', 'get', '-b', '1024', '-o', out, '-B', '60', `${coap}/fw/sha256/${r.imageHex}`], 70_000);
    expect(sha256Hex(await readFile(out))).toBe(r.imageHex);
  });

  it('coap-client-notls -s observes /d/<id>/c and is told op:update after a release', { timeout: 60_000 }, async () => {
    await writeFile(join(work, 'reg2.json'), JSON.stringify({ vendor: VENDOR, class: CLASS, seq: 2, mode: 'server' }));
    await run(COAP_CLIENT, ['-m', 'post', '-t', '50', '-f', join(work, 'reg2.json'), '-B', '20', `${coap}/d/lab-2`]);
    const observer = startDaemon(COAP_CLIENT, ['-m', 'get', '-s', '30', '-A', '50', '-B', '35', `${coap}/d/lab-2/c`]);
    const until = async (cond: () => boolean, what: string): Promise<void> => {
      for (let i = 0; i < 300 && !cond(); i++) await new Promise((res) => setTimeout(res, 100));
      if (!cond()) throw new Error(`timed out waiting for ${what}: ${observer.output()}`);
    };
    await until(() => observer.output().includes('{"op":"none"}') && server.observe.size > 0, 'the first answer');
    const r3 = signedRelease(3, SIGNER, bytes(2000, 3));
    const staged = await server.staging.begin(r3.imageHex, r3.image.length);
    if ('write' in staged) {
      await staged.write(r3.image);
      await staged.finish();
    }
    const { publishEnvelope } = await import('../src/service/publish.js');
    const { release } = await publishEnvelope(server.store, r3.envelope, {
      trust: { anchors: [{ name: 'oem', publicKey: SIGNER.publicKey }] },
      publisher: 'test',
      urgency: 'critical',
      images: async (sha) => (sha === r3.imageHex ? r3.image : undefined),
    });
    await server.targeting.released(release);
    await until(() => /"op":"update".*"seq":3/.test(observer.output()), 'the op:update notification');
    await observer.stop();
  });

  it('node-coap uploads a report block-wise, and is refused a blob over plain CoAP at its first block', { timeout: 30_000 }, async () => {
    const coapLib = await import('coap');
    const port = server.address().port;
    const agent = new coapLib.Agent({ type: 'udp4' });
    const send = (method: string, pathname: string, payload: Buffer, format: string): Promise<{ code: string; payload: Buffer }> =>
      new Promise((resolve, reject) => {
        const req = coapLib.request({ hostname: '127.0.0.1', port, pathname, method, agent });
        req.setOption('Content-Format', format);
        req.setOption('Block1', Buffer.of(2)); // 64-byte blocks: node-coap's segmented transmission
        const timer = setTimeout(() => reject(new Error('node-coap: no answer')), 20_000);
        req.on('response', (res: { code: string; payload: Buffer }) => {
          clearTimeout(timer);
          resolve({ code: res.code, payload: res.payload });
        });
        req.on('error', (e: Error) => (clearTimeout(timer), reject(e)));
        req.write(payload);
        req.end();
      });
    const before = server.endpoint.stats.received;
    const report = Buffer.from(JSON.stringify({ rseq: 2, state: 'downloading', seq: 3, done: 1024, total: 2000, detail: 'x'.repeat(150) }));
    const res = await send('POST', '/d/lab-1/r', report, 'application/json');
    expect(res.code).toBe('2.04');
    expect(server.endpoint.stats.received - before).toBeGreaterThanOrEqual(Math.ceil(report.length / 64));
    expect((await server.store.getDevice('lab-1'))!).toMatchObject({ state: 'downloading', reportSeq: 2, progress: { done: 1024, total: 2000 } });
    const blob = await send('PUT', `/pub/blob/${'ab'.repeat(32)}`, Buffer.alloc(64 * 1024, 1), 'application/octet-stream');
    expect(blob.code).toBe('4.03');
    expect(server.staging.uploading).toBe(0);
    // Closed once its last ACKs are out (node-coap throws when its socket closes under a send).
    await new Promise((res) => setTimeout(res, 200));
    agent.close();
  });
});
