/**
 * Security on both sides: devices reach the gateway over coaps with their
 * own PSKs, and the gateway reaches a coaps upstream with its own identity,
 * speaking for each device at /d/<its identity>. A device can never report
 * for another one; plain CoAP registration is off once devices have PSKs.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { pathOptions, uintOption } from '../../src/codec/options.js';
import { decodeBody, encodeBody } from '../../src/gateway/body.js';
import { startGateway } from '../../src/gateway/gateway.js';
import { startFileServer } from '../../src/server/serve.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import type { DtlsServerEvent } from '../../src/transport/dtls/server.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { hexOf, image, tempDir } from './helpers.js';
import { CLASS_HEX, serviceResources, ServiceState } from './upstream.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
});

const key = (s: string): Uint8Array => new TextEncoder().encode(s.padEnd(16, '*'));

async function setup() {
  const t = await tempDir('coaps');
  cleanups.push(t.remove);
  await mkdir(join(t.dir, 'served'));
  const img = image(9000, 41);
  await writeFile(join(t.dir, 'served', 'fw.bin'), img);
  const state = new ServiceState();
  const upstreamEvents: DtlsServerEvent[] = [];
  // The upstream speaks coaps only, and knows the gateway (not the devices).
  const upstream = await startFileServer({
    dir: join(t.dir, 'served'), coap: false, refreshMs: 0, resources: serviceResources(state),
    secure: { host: '127.0.0.1', port: 0, psk: PskStore.fromEntries([['gateway-7', key('gateway secret')]]), onEvent: (e) => upstreamEvents.push(e) },
  });
  cleanups.unshift(() => upstream.close());
  const devices = PskStore.fromEntries([['dev-1', key('dev-1 secret')], ['dev-2', key('dev-2 secret')]]);
  const gw = await startGateway({
    upstream: `coaps://127.0.0.1:${upstream.dtls!.address().port}`,
    upstreamPsk: { identity: 'gateway-7', key: key('gateway secret') },
    cacheDir: join(t.dir, 'gw'), host: '127.0.0.1', port: 0,
    secure: { psk: devices, host: '127.0.0.1', port: 0 },
  });
  cleanups.unshift(() => gw.close());
  const device = async (identity: string): Promise<CoapClient> => {
    const c = await openClient(`coaps://127.0.0.1:${gw.dtls!.address().port}/`, { psk: { identity, key: key(`${identity} secret`) } });
    cleanups.unshift(() => c.close());
    return c;
  };
  const plain = await openClient(`coap://127.0.0.1:${gw.address().port}/`);
  cleanups.unshift(() => plain.close());
  return { img, state, gw, device, plain, upstreamEvents };
}

const register = (c: CoapClient, path: string) =>
  c.request({ code: Code.POST, options: [...pathOptions(path), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.CBOR)], payload: encodeBody({ vendor: 'v', class: CLASS_HEX, seq: 1, mode: 'client' }, ContentFormat.CBOR) }, {});

describe('coaps on both sides', () => {
  it('a device registers as its PSK identity; the gateway speaks for it upstream under its own identity', async () => {
    const { state, device, upstreamEvents, gw } = await setup();
    const dev1 = await device('dev-1');
    const r = await register(dev1, '/d');
    expect(r.code).toBe(Code.CHANGED);
    expect(decodeBody(r.payload, ContentFormat.CBOR)).toMatchObject({ id: 'dev-1' });
    const rep = await dev1.request({ code: Code.POST, options: pathOptions('/d/dev-1/r'), payload: encodeBody({ rseq: 1, state: 'idle' }, ContentFormat.CBOR) }, {});
    expect(rep.code).toBe(Code.CHANGED);
    await gw.flush();
    expect([...state.devices.keys()]).toEqual(['dev-1']);
    expect(state.accepted).toEqual([{ device: 'dev-1', rseq: 1, state: 'idle' }]);
    // Upstream, only the gateway's identity ever handshook.
    expect(upstreamEvents.filter((e) => e.type === 'established').map((e) => (e as { identity: string }).identity)).toEqual(['gateway-7']);
  });

  it('refuses a device speaking for another (4.03), and plain CoAP registration once devices have PSKs', async () => {
    const { state, device, plain, gw } = await setup();
    const dev2 = await device('dev-2');
    expect((await register(dev2, '/d/dev-1')).code).toBe(Code.FORBIDDEN);
    const spoof = await dev2.request({ code: Code.POST, options: pathOptions('/d/dev-1/r'), payload: encodeBody({ rseq: 9, state: 'failed', detail: 'x' }, ContentFormat.CBOR) }, {});
    expect(spoof.code).toBe(Code.FORBIDDEN);
    expect((await register(plain, '/d/dev-1')).code).toBe(Code.FORBIDDEN);
    expect((await register(plain, '/d')).code).toBe(Code.FORBIDDEN);
    await gw.flush();
    expect(state.devices.size).toBe(0);
    expect(state.accepted).toEqual([]);
  });

  it('a device fetches an image over coaps through the gateway, which fetched it over coaps', async () => {
    const { img, device } = await setup();
    const dev1 = await device('dev-1');
    const r = await fetchAll(dev1.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${hexOf(img)}`), retry: { attempts: 20 } });
    expect(Buffer.from(r.data).equals(Buffer.from(img))).toBe(true);
  });
});
