/**
 * The real update service (startUpdateServer on SQLite) behind the real
 * gateway, over coaps, on loopback: a publisher publishes a signed release;
 * devices talking plain CoAP to the gateway register, update through the
 * gateway's cache and report, and the gateway speaks for all of them
 * upstream under its one PSK identity with the `gateway` role
 * (src/service/access.ts). Without the role, the service takes the
 * gateway's identity for one device: the second one's registration is
 * refused, and the gateway relays that refusal.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeBlock } from '../../src/codec/block.js';
import { decodeMessage } from '../../src/codec/message.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, uriPath } from '../../src/codec/options.js';
import type { Transport } from '../../src/core/transport.js';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { GatewayEvent } from '../../src/gateway/options.js';
import type { PskRole } from '../../src/transport/dtls/psk-store.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { SqliteHarness } from '../service/harness.js';
import { PSK, publishOver, signedRelease, startService, type Service } from '../service/service-harness.js';
import { SimDevice } from './fleet.js';
import { image, until } from './helpers.js';
import { KEY, TRUST } from './upstream.js';

const GW = { identity: 'gw-edge-1', key: new Uint8Array(16).fill(0x47) };
const IMAGE = image(24 * 1024, 77); // 24 blocks of 1024
const RELEASE = signedRelease(2, KEY, IMAGE); // the gateway tests' vendor, class and signing key

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
});

/** The service with the gateway's identity (with `roles`) and a publisher; the release published over coaps. */
async function service(roles: PskRole[]): Promise<Service> {
  const h = new SqliteHarness();
  cleanups.push(() => h.cleanup());
  const psk = PskStore.fromEntries([
    [GW.identity, GW.key, roles],
    [PSK.publisher.identity, PSK.publisher.key, ['publisher']],
  ]);
  const svc = await startService(h, {
    secure: { psk, host: '127.0.0.1', port: 0 },
    // Device traffic only over coaps: every registration here came through the gateway's identity.
    openRegistration: false,
    releaseTrust: TRUST,
  });
  cleanups.unshift(() => svc.close());
  const published = await publishOver(await svc.secure('publisher'), RELEASE);
  expect(published.blob.code, published.blob.text).toBe(Code.CREATED);
  expect(published.release.code, published.release.text).toBe(Code.CREATED);
  return svc;
}

/**
 * Block2 numbers of the image GETs the gateway sent upstream, counted in its
 * client under DTLS; a CON retransmitted (same message ID, RFC 7252 §4.2) is one request.
 * A GET with Q-Block2 (RFC 9177: the fill's probe for it) goes to `qlog`, by its NUM.
 */
function countImageBlocks(log: number[], qlog: number[] = []): (t: Transport) => Transport {
  const path = `fw/sha256/${RELEASE.imageHex}`;
  return (inner) => {
    const seen = new Set<number>();
    const count = (data: Uint8Array): void => {
      const m = decodeMessage(data);
      if (m.code !== Code.GET || uriPath(m).join('/') !== path || seen.has(m.messageId)) return;
      seen.add(m.messageId);
      const q = getOption(m, OptionNumber.Q_BLOCK2);
      if (q !== undefined) return void qlog.push(decodeBlock(q).num);
      const raw = getOption(m, OptionNumber.BLOCK2);
      log.push(raw === undefined ? 0 : decodeBlock(raw).num);
    };
    return {
      send: (d, p) => (count(d), inner.send(d, p)),
      post: inner.post ? (d, p) => (count(d), inner.post!(d, p)) : undefined,
      onMessage: (h) => inner.onMessage(h),
      address: () => inner.address(),
      close: () => inner.close(),
    };
  };
}

async function gateway(svc: Service, events: GatewayEvent[], imageBlocks: number[] = [], probes: number[] = []): Promise<{ gw: Gateway; base: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-gw-svc-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const gw = await startGateway({
    upstream: svc.coapsUrl,
    upstreamPsk: GW,
    cacheDir: dir,
    host: '127.0.0.1',
    port: 0,
    openRegistration: true, // devices on the gateway's link speak plain CoAP (a lab)
    verify: { trust: TRUST },
    maxForwardBackoffMs: 500,
    upstreamClient: { params: { ackTimeoutMs: 500, maxRetransmit: 3 }, wrapTransport: countImageBlocks(imageBlocks, probes) },
    onEvent: (e) => events.push(e),
  });
  cleanups.unshift(() => gw.close());
  return { gw, base: `coap://127.0.0.1:${gw.address().port}` };
}

async function fleet(n: number, base: string): Promise<SimDevice[]> {
  const all = await Promise.all(Array.from({ length: n }, (_, i) => SimDevice.create(`tap-${i + 1}`, base, 32 * 1024)));
  cleanups.unshift(async () => void (await Promise.all(all.map((d) => d.close()))));
  return all;
}

describe('the update service behind the gateway, over coaps', () => {
  it('with the gateway role: three devices register, update through the cache and report; the image crosses the uplink once', { timeout: 60_000 }, async () => {
    const svc = await service(['gateway']);
    const events: GatewayEvent[] = [];
    const imageBlocks: number[] = [];
    const probes: number[] = [];
    const { gw, base } = await gateway(svc, events, imageBlocks, probes);
    const devices = await fleet(3, base);
    for (const d of devices) expect(await d.register(), d.id).toBe(Code.CHANGED);

    const results = await Promise.all(devices.map((d) => d.update()));
    expect(results.map((r) => r.result)).toEqual(['installed', 'installed', 'installed']);
    expect(results.every((r) => r.candidateSequence === 2 && r.blocksFetched === 24)).toBe(true);
    for (const d of devices) expect(await d.report('installed', { seq: 2, iseq: 2 }), d.id).toBe(Code.CHANGED);
    await gw.flush();
    await until(() => gw.stats().queue.pending === 0, 10_000);

    const s = gw.stats();
    expect(s.queue).toMatchObject({ delivered: 3, rejected: 0, dropped: 0 });
    // One fill, of exactly the image's bytes: the three devices were served from the cache.
    expect(s.cache).toMatchObject({ fills: 1, completed: 1, upstreamBytes: IMAGE.length });
    expect(s.verification!.passed).toBe(1);
    // And on the wire: the service serves its release blobs with Q-Block2 (RFC 9177), so the fill asked
    // with a probe for block 0 and then for missing blocks in batches: fewer requests than the 24 blocks,
    // and not one Block2 request.
    expect(imageBlocks).toEqual([]);
    expect(probes[0]).toBe(0);
    expect(probes.length).toBeLessThan(24);
    expect(s.cache).toMatchObject({ block2Fills: 0, qblock2Fills: 1 });

    const stored = await Promise.all(devices.map((d) => svc.server.store.getDevice(d.id)));
    for (const [i, dev] of stored.entries()) {
      expect(dev, devices[i]!.id).toMatchObject({ id: devices[i]!.id, state: 'installed', targetSeq: 2, installedSeq: 2, reportSeq: 1, mode: 'client' });
      // The gateway speaks for the device; the device is not bound to the gateway's identity.
      expect(dev!.identity).toBeUndefined();
    }
    expect(await svc.server.store.getDeviceByIdentity(GW.identity)).toBeUndefined();
    const history = await svc.server.store.listHistory('tap-2');
    expect(history.map((e) => e.transition)).toEqual(['installed', 'registered']);
  });

  it('without the role: the service takes the gateway for its first device, and the gateway relays the 4.03 to the second', { timeout: 60_000 }, async () => {
    const svc = await service([]);
    const events: GatewayEvent[] = [];
    const { gw, base } = await gateway(svc, events);
    const [first, second] = await fleet(2, base);
    expect(await first!.register()).toBe(Code.CHANGED);
    // Relayed live (the uplink is up, nothing of the device queued): the device sees the upstream's refusal.
    expect(await second!.register()).toBe(Code.FORBIDDEN);
    expect(events).toContainEqual({ type: 'registration-relayed', device: 'tap-2', code: Code.FORBIDDEN });
    expect(gw.uplink.up).toBe(true); // a refusal is an answer, not an outage

    // The refused device's report is taken at the gateway (2.04) and rejected upstream for good, not retried.
    expect(await second!.report('idle')).toBe(Code.CHANGED);
    expect(await first!.report('idle')).toBe(Code.CHANGED);
    await gw.flush();
    await until(() => gw.stats().queue.pending === 0, 10_000);
    const forwarded = events.filter((e): e is Extract<GatewayEvent, { type: 'forwarded' }> => e.type === 'forwarded');
    expect(forwarded.map((e) => [e.device, e.outcome])).toEqual([
      ['tap-2', 'rejected'],
      ['tap-1', 'delivered'],
    ]);
    // 4.04: the service never registered tap-2; the gateway has no accepted registration of it to send again.
    expect(forwarded[0]!.code).toBe(Code.NOT_FOUND);
    expect(gw.stats().forwarder.reregistrations).toBe(0);
    expect(gw.stats().queue).toMatchObject({ delivered: 1, rejected: 1, pending: 0 });

    // Upstream: the first device is bound to the gateway's identity, the second does not exist.
    expect(await svc.server.store.getDevice('tap-1')).toMatchObject({ identity: GW.identity, state: 'idle', reportSeq: 1 });
    expect(await svc.server.store.getDevice('tap-2')).toBeUndefined();
  });
});
