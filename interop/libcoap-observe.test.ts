/**
 * Interop: libcoap's `coap-client-notls -s 60` observes a device's command
 * resource on the update server (RFC 7641) and sees the op change when a
 * release makes the server tell the device to update, the way a device
 * behind a NAT keeps its Observe registration instead of listening itself.
 * `-A 50` asks for JSON, so what coap-client prints can be read; `-w` ends
 * each representation with a newline.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Code } from '../src/codec/numbers.js';
import { SqliteHarness } from '../test/service/harness.js';
import { call, eventually, publishOver, reg, signedRelease, startService, type Service } from '../test/service/service-harness.js';
import { COAP_CLIENT, describeWithBinaries, libcoapMissing, startDaemon, killAll } from './helpers.js';

describeWithBinaries('coap-client-notls observes a device command resource', libcoapMissing(), () => {
  const h = new SqliteHarness();
  let svc: Service;

  beforeAll(async () => {
    svc = await startService(h);
  });
  afterAll(async () => {
    killAll();
    await svc?.close();
    await h.cleanup();
  });

  it('sees op "none", then op "update" with the release when it is published (critical: at once)', { timeout: 60_000 }, async () => {
    const device = await svc.plain();
    expect((await call(device, Code.POST, '/d/lab-7', reg('server', 0))).code).toBe(Code.CHANGED);
    const port = svc.server.address().port;
    const client = startDaemon(COAP_CLIENT, ['-m', 'get', '-s', '60', '-A', '50', '-w', '-B', '60', `coap://127.0.0.1:${port}/d/lab-7/c`]);
    const lines = (): Record<string, unknown>[] =>
      client
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    await eventually(() => (lines().length > 0 ? true : undefined), 20_000, 'the first representation');
    expect(lines()[0]).toEqual({ op: 'none' });
    await eventually(() => (svc.server.observe.size > 0 ? true : undefined), 10_000, 'the registration on the server');

    const publisher = await svc.secure('publisher');
    const r = signedRelease(1);
    expect((await publishOver(publisher, r, { urgency: 'critical', downtime: 30 })).release.code).toBe(Code.CREATED);
    const update = await eventually(() => lines().find((l) => l.op === 'update'), 20_000, 'a notification with op update');
    expect(update).toMatchObject({ op: 'update', seq: 1, manifest: `/fw/sha256/${r.envelopeHex}`, urgency: 'critical', downtime: 30 });
    await client.stop();
  });
});
