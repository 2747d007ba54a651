/**
 * A gateway's identity on the update service (src/service/access.ts): with
 * the `gateway` role a coaps identity registers and reports for every device
 * behind it at /d/<id>, never for a device bound to a coaps identity of its
 * own. Without the role an identity is one device (the second is refused),
 * which is what a gateway met before the role existed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { Code } from '../../src/codec/numbers.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { SqliteHarness } from './harness.js';
import { call, PSK, reg, startService, type Service } from './service-harness.js';

const GW = { identity: 'gw-7', key: new Uint8Array(16).fill(7) };
const PLAIN_GW = { identity: 'gw-8', key: new Uint8Array(16).fill(8) };

describe('a gateway identity on the update service', () => {
  let svc: Service;
  const clients: CoapClient[] = [];
  const client = async (psk: { identity: string; key: Uint8Array }): Promise<CoapClient> => {
    const c = await openClient(`${svc.coapsUrl}/`, { psk, params: { ackTimeoutMs: 500 } });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    const psk = PskStore.fromEntries([
      [PSK.dev1.identity, PSK.dev1.key],
      [GW.identity, GW.key, ['gateway']],
      [PLAIN_GW.identity, PLAIN_GW.key],
    ]);
    svc = await startService(new SqliteHarness(), { secure: { psk, host: '127.0.0.1', port: 0 }, openRegistration: false });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await svc?.close();
  });

  it('registers and reports for several devices behind it', async () => {
    const gw = await client(GW);
    for (const id of ['tap-1', 'tap-2', 'tap-3']) {
      expect((await call(gw, Code.POST, `/d/${id}`, reg('server'))).code, id).toBe(Code.CHANGED);
      expect((await call(gw, Code.POST, `/d/${id}/r`, { rseq: 1, state: 'confirmed', seq: 1, iseq: 1 })).code, id).toBe(Code.CHANGED);
    }
    const devices = await Promise.all(['tap-1', 'tap-2', 'tap-3'].map((id) => svc.server.store.getDevice(id)));
    expect(devices.map((d) => d?.installedSeq)).toEqual([1, 1, 1]);
    // None is bound to the gateway's identity: each can later move to a coaps identity of its own.
    expect(devices.map((d) => d?.identity)).toEqual([undefined, undefined, undefined]);
  });

  it('must name the device, and cannot speak for a device with an identity of its own', async () => {
    const dev = await client(PSK.dev1);
    expect((await call(dev, Code.POST, '/d', reg('client'))).code).toBe(Code.CHANGED);
    const gw = await client(GW);
    expect((await call(gw, Code.POST, '/d', reg('server'))).code).toBe(Code.BAD_REQUEST);
    const taken = await call(gw, Code.POST, `/d/${PSK.dev1.identity}`, reg('server'));
    expect(taken.code).toBe(Code.FORBIDDEN);
    expect(taken.text).toMatch(/bound to coaps identity 'dev-1'/);
    expect((await call(gw, Code.POST, `/d/${PSK.dev1.identity}/r`, { rseq: 1, state: 'failed', seq: 2, detail: 'forged' })).code).toBe(Code.FORBIDDEN);
    expect((await svc.server.store.getDevice(PSK.dev1.identity))?.mode).toBe('client');
  });

  it('without the role, an identity is one device: its second is refused', async () => {
    const gw = await client(PLAIN_GW);
    expect((await call(gw, Code.POST, '/d/cam-1', reg('server'))).code).toBe(Code.CHANGED);
    const second = await call(gw, Code.POST, '/d/cam-2', reg('server'));
    expect(second.code).toBe(Code.FORBIDDEN);
    expect(second.text).toMatch(/identity 'gw-8' is device cam-1, not cam-2/);
    // And a device behind a gateway is not reachable over plain CoAP when registration is closed.
    const plain = await svc.plain();
    expect((await call(plain, Code.POST, '/d/tap-1/r', { rseq: 2, state: 'failed', seq: 1, detail: 'x' })).code).toBe(Code.FORBIDDEN);
  });
});
