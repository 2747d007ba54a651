/**
 * Observe through the gateway (RFC 7641 §5): devices observing the upstream's
 * command resource through the gateway are notified when it changes, with one
 * registration upstream for all of them; a device that goes away (answers a
 * notification with RST) is dropped, and once the last one went the gateway
 * lets go upstream too. Real sockets on loopback, a real file server upstream
 * with an observable resource of its own; manifests verified on the way.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openClient, type CoapClient } from '../../src/client/open.js';
import type { CoapMessage } from '../../src/codec/message.js';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, pathOptions, uintOption } from '../../src/codec/options.js';
import { Observation, type ObserveLoss } from '../../src/messaging/observation.js';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { Resource } from '../../src/server/router.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import { image, tempDir, until } from './helpers.js';
import { CLASS_HEX, envelope, OTHER_KEY, TRUST } from './upstream.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
});

const text = (m: CoapMessage): string => new TextDecoder().decode(m.payload);

/** An upstream whose resource at `path` is observable: `set` changes what it says and notifies. */
async function upstream(dir: string, path = 'd/dev-1/c', others: readonly string[] = []): Promise<{ server: FileServer; set: (v: string | ResponseSpec) => void }> {
  let current: ResponseSpec = { code: Code.CONTENT, payload: new Uint8Array(0) };
  const holder: { server?: FileServer } = {};
  const resource: Resource = { methods: new Set([Code.GET]), handle: () => current };
  const server = await startFileServer({
    dir,
    host: '127.0.0.1',
    port: 0,
    refreshMs: 0,
    resources: (p) => (p.join('/') === path || others.includes(p.join('/')) ? holder.server!.observe.wrap(p.join('/'), resource) : undefined),
  });
  holder.server = server;
  cleanups.unshift(() => server.close());
  return {
    server,
    set: (v) => {
      current =
        typeof v === 'string' ? { code: Code.CONTENT, options: [uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.TEXT_PLAIN)], payload: new TextEncoder().encode(v) } : v;
      server.observe.changed(path, resource);
    },
  };
}

/** A device observing `path` at the gateway. */
async function observer(gw: Gateway, path = '/d/dev-1/c'): Promise<{ client: CoapClient; seen: string[]; values: CoapMessage[]; lost: ObserveLoss[]; observation: Observation }> {
  const client = await openClient(`coap://127.0.0.1:${gw.address().port}/`);
  cleanups.unshift(() => client.close());
  const seen: string[] = [];
  const values: CoapMessage[] = [];
  const lost: ObserveLoss[] = [];
  const observation = new Observation({
    runtime: systemRuntime,
    openStream: (l) => client.openStream(l),
    path,
    refreshMs: 600_000,
    onValue: (m) => (seen.push(text(m)), values.push(m)),
    onLost: (l) => lost.push(l),
  });
  observation.start();
  cleanups.unshift(async () => observation.close());
  return { client, seen, values, lost, observation };
}

describe('Observe through the gateway', () => {
  it('notifies every device observing through it when the upstream resource changes, with one upstream registration', { timeout: 30_000 }, async () => {
    const t = await tempDir('observe');
    cleanups.push(t.remove);
    await mkdir(join(t.dir, 'served'));
    const up = await upstream(join(t.dir, 'served'));
    up.set('v1');
    const gw = await startGateway({ upstream: `coap://127.0.0.1:${up.server.address().port}`, cacheDir: join(t.dir, 'gw'), host: '127.0.0.1', port: 0, openRegistration: true });
    cleanups.unshift(() => gw.close());
    const a = await observer(gw);
    const b = await observer(gw);
    await until(() => a.seen.length === 1 && b.seen.length === 1);
    expect([a.seen, b.seen]).toEqual([['v1'], ['v1']]);
    expect(up.server.observe.size).toBe(1); // the gateway registered once for both
    up.set('v2');
    await until(() => a.seen.length === 2 && b.seen.length === 2);
    up.set('v3');
    await until(() => a.seen.length === 3 && b.seen.length === 3);
    expect(a.seen).toEqual(['v1', 'v2', 'v3']);
    expect(b.seen).toEqual(['v1', 'v2', 'v3']);
    expect(a.lost).toEqual([]);
    const s = gw.stats().observe!;
    expect(s).toMatchObject({ upstream: 1, open: 1, observers: 2 });
    expect(s.notifications).toBe(3);
    expect(up.server.observe.size).toBe(1);
  });

  it('verifies each manifest notification before a device gets it: a bad one is not passed on, the next good one is', { timeout: 30_000 }, async () => {
    const t = await tempDir('observe-m');
    cleanups.push(t.remove);
    await mkdir(join(t.dir, 'served'));
    const up = await upstream(join(t.dir, 'served'), `m/${CLASS_HEX}`);
    const cbor = (env: Uint8Array): ResponseSpec => ({ code: Code.CONTENT, options: [uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.CBOR)], payload: env });
    const img = image(3000, 5);
    const [good2, forged3, good3] = [envelope(img, 2), envelope(img, 3, OTHER_KEY), envelope(img, 3)];
    up.set(cbor(good2));
    const gw = await startGateway({ upstream: `coap://127.0.0.1:${up.server.address().port}`, cacheDir: join(t.dir, 'gw'), host: '127.0.0.1', port: 0, verify: { trust: TRUST } });
    cleanups.unshift(() => gw.close());
    const d = await observer(gw, `/m/${CLASS_HEX}`);
    await until(() => d.values.length === 1);
    up.set(cbor(forged3)); // signed by a key the gateway does not trust
    await until(() => gw.stats().observe!.refused === 1);
    up.set(cbor(good3));
    await until(() => d.values.length === 2);
    expect(d.values.map((m) => Buffer.from(m.payload).toString('hex'))).toEqual([good2, good3].map((e) => Buffer.from(e).toString('hex')));
    expect(gw.stats().verification!.refused.signature).toBe(1);
    expect(gw.stats().observe).toMatchObject({ notifications: 3, refused: 1, upstream: 1 });
  });

  it('observes at most maxUpstream resources upstream: a registration beyond is answered without Observe (not registered)', { timeout: 30_000 }, async () => {
    const t = await tempDir('observe-max');
    cleanups.push(t.remove);
    await mkdir(join(t.dir, 'served'));
    const up = await upstream(join(t.dir, 'served'), 'd/dev-1/c', ['d/dev-2/c']);
    up.set('v1');
    const gw = await startGateway({ upstream: `coap://127.0.0.1:${up.server.address().port}`, cacheDir: join(t.dir, 'gw'), host: '127.0.0.1', port: 0, observe: { maxUpstream: 1 } });
    cleanups.unshift(() => gw.close());
    const a = await observer(gw);
    await until(() => a.seen.length === 1);
    const c = await openClient(`coap://127.0.0.1:${gw.address().port}/`);
    cleanups.unshift(() => c.close());
    const res = await c.request({ code: Code.GET, options: [uintOption(OptionNumber.OBSERVE, 0), ...pathOptions('/d/dev-2/c')] });
    expect(res.code).toBe(Code.CONTENT);
    expect(text(res)).toBe('v1');
    expect(getOption(res, OptionNumber.OBSERVE)).toBeUndefined(); // RFC 7641 §3.1: not registered
    expect(gw.stats().observe).toMatchObject({ overflow: 1, upstream: 1, open: 1, observers: 1 });
    expect(up.server.observe.size).toBe(1);
  });

  it('drops a device that went away (RST), and lets go upstream once the last one went', { timeout: 30_000 }, async () => {
    const t = await tempDir('observe-gone');
    cleanups.push(t.remove);
    await mkdir(join(t.dir, 'served'));
    const up = await upstream(join(t.dir, 'served'));
    up.set('v1');
    const gw = await startGateway({ upstream: `coap://127.0.0.1:${up.server.address().port}`, cacheDir: join(t.dir, 'gw'), host: '127.0.0.1', port: 0, openRegistration: true, observe: { lingerMs: 100 } });
    cleanups.unshift(() => gw.close());
    const a = await observer(gw);
    const b = await observer(gw);
    await until(() => a.seen.length === 1 && b.seen.length === 1);
    a.observation.close(); // a forgets: the next notification it gets is answered RST (RFC 7641 §3.6)
    up.set('v2');
    await until(() => b.seen.length === 2);
    await until(() => gw.stats().observe!.observers === 1);
    expect(gw.stats().observe!.expired).toBe(1);
    expect(a.seen).toEqual(['v1']);
    b.observation.close();
    up.set('v3');
    await until(() => gw.stats().observe!.observers === 0);
    // After the linger the gateway's upstream registration goes; the upstream's next notification draws a RST.
    await until(() => gw.stats().observe!.open === 0);
    up.set('v4');
    await until(() => up.server.observe.size === 0);
    expect(b.seen).toEqual(['v1', 'v2']);
  });
});
