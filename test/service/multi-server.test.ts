/**
 * Two real `coapfw serve` processes on one PostgreSQL database (issue 10,
 * "How it is checked"): a device registered and observing through one is
 * updated through the other (the release published there opens its command,
 * and the other server notifies it), a negotiated device answers through the
 * other server, and an Observe on /m/<class> of one fires for a release
 * published through the other (PostgreSQL LISTEN/NOTIFY).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithBinaries } from '../../interop/helpers.js';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { Code } from '../../src/codec/numbers.js';
import { openStore } from '../../src/service/open.js';
import type { Store } from '../../src/service/store.js';
import { publicKeyToPem } from '../../src/suit/keys.js';
import { runCli, type CliProcess } from '../cli/spawn-cli.js';
import { CLASS } from './fixtures.js';
import { PG_MISSING, PG_URL, PgHarness } from './harness.js';
import { call, etagOf, eventually, observer, publishOver, reg, signedRelease, SIGNER } from './service-harness.js';

const PUBLISHER = { identity: 'ci-release', key: new Uint8Array(16).fill(9) };

describeWithBinaries('two coapfw serve processes on one PostgreSQL database', PG_MISSING, () => {
  const h = new PgHarness(PG_URL!);
  let work: string;
  let url: string;
  const servers: CliProcess[] = [];
  const urls: { coap: string; coaps: string }[] = [];
  const clients: CoapClient[] = [];
  let store: Store;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'coapfw-two-servers-'));
    url = await h.fresh();
    await writeFile(join(work, 'psk.txt'), `${PUBLISHER.identity} ${Buffer.from(PUBLISHER.key).toString('hex')} publisher\n`);
    await writeFile(join(work, 'oem.pub'), publicKeyToPem(SIGNER.publicKey));
    for (const name of ['a', 'b']) {
      const dir = join(work, name);
      await mkdir(dir);
      const p = runCli(['serve', dir, '--db', url, '--host', '127.0.0.1', '--port', '0', '--psk-file', join(work, 'psk.txt'), '--dtls-port', '0', '--trust', join(work, 'oem.pub'), '--open-registration', '--normal-window', '0', '--json']);
      servers.push(p);
      await p.waitFor((o) => o.includes('"listening"'), 30_000);
      const start = JSON.parse(p.out().split('\n')[0]!) as { urls: string[]; service: { backend: string } };
      expect(start.service.backend).toBe('postgres');
      urls.push({ coap: start.urls.find((u) => u.startsWith('coap:'))!, coaps: start.urls.find((u) => u.startsWith('coaps:'))! });
    }
    store = await openStore(url);
  }, 90_000);

  afterAll(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    for (const p of servers) p.child.kill('SIGTERM');
    await Promise.all(servers.map((p) => p.done));
    await store?.close();
    await h.cleanup();
    await rm(work, { recursive: true, force: true });
  }, 30_000);

  const client = async (uri: string, psk?: typeof PUBLISHER): Promise<CoapClient> => {
    const c = await openClient(`${uri}/`, { ...(psk ? { psk } : {}), params: { ackTimeoutMs: 500 } });
    clients.push(c);
    return c;
  };

  it('a device registered and observing through A is updated by a release published through B; Observe on /m of A fires', { timeout: 60_000 }, async () => {
    const a = await client(urls[0]!.coap);
    expect((await call(a, Code.POST, '/d/two-1', reg('server', 1))).code).toBe(Code.CHANGED);
    expect((await call(a, Code.POST, '/d/two-2', reg('negotiated', 1))).code).toBe(Code.CHANGED);
    const pubB = await client(urls[1]!.coaps, PUBLISHER);
    const r2 = signedRelease(2);
    expect((await publishOver(pubB, r2)).release.code).toBe(Code.CREATED);
    const notes = observer(a);
    notes.observe('/d/two-1/c');
    notes.observe(`/m/${CLASS}`);
    await eventually(() => (notes.of('/d/two-1/c').some((x) => x.map.op === 'update') && notes.of(`/m/${CLASS}`).length > 0 ? true : undefined), 20_000, 'first answers from A');
    // The next release, published through B, reaches A's observers of the device's command and of the manifest.
    const r3 = signedRelease(3);
    expect((await publishOver(pubB, r3)).release.code).toBe(Code.CREATED);
    await eventually(() => (notes.of(`/m/${CLASS}`).some((x) => etagOf(x) === r3.envelopeHex.slice(0, 16)) ? true : undefined), 20_000, "A's /m notification of B's release");
    await eventually(() => (notes.of('/d/two-1/c').some((x) => x.map.op === 'update' && x.map.seq === 3) ? true : undefined), 20_000, "A's command notification for B's release");
    notes.close();
    // The device reports through B; both servers see one history.
    const b = await client(urls[1]!.coap);
    expect((await call(b, Code.POST, '/d/two-1/r', { rseq: 1, state: 'confirmed', seq: 3, iseq: 3 })).code).toBe(Code.CHANGED);
    expect((await call(a, Code.GET, '/d/two-1/c')).map).toEqual({ op: 'none' });
    expect((await store.getDevice('two-1'))!).toMatchObject({ state: 'confirmed', installedSeq: 3 });
  });

  it('a negotiated device sees the offer on A, answers "defer 1" through B, and A tells it op:update once the time has passed', { timeout: 60_000 }, async () => {
    const a = await client(urls[0]!.coap);
    const b = await client(urls[1]!.coap);
    const offer = await eventually(async () => {
      const c = await call(a, Code.GET, '/d/two-2/c');
      return c.map.op === 'offer' && c.map.seq === 3 ? c : undefined;
    }, 20_000, 'the offer');
    const notes = observer(a);
    notes.observe('/d/two-2/c');
    await eventually(() => (notes.of('/d/two-2/c').length > 0 ? true : undefined), 10_000, 'the observation');
    const answered = Date.now();
    expect((await call(b, Code.POST, '/d/two-2/c', { id: offer.map.id, answer: 'defer', defer: 1 })).map).toEqual({ op: 'none' });
    const at = await eventually(() => (notes.of('/d/two-2/c').some((x) => x.map.op === 'update') ? Date.now() : undefined), 20_000, 'op:update on A');
    expect(at - answered).toBeGreaterThanOrEqual(1000);
    notes.close();
    const cmd = (await store.getCommand(offer.map.id as number))!;
    expect(cmd).toMatchObject({ state: 'triggered', deferS: 1 });
  });
});
