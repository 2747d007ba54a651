/**
 * 100 simulated devices behind one gateway update from an upstream server:
 * the upstream serves each block of the image exactly once, though the
 * devices fetch concurrently while the cache still fills; and the uplink cut
 * mid-rollout: devices that have their image finish, their reports queue on
 * disk, and once the upstream is back every report arrives exactly once.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterEach, describe, expect, it } from 'vitest';
import { bufferSource } from '../../src/blockwise/source.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { Code } from '../../src/codec/numbers.js';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { openClient } from '../../src/client/open.js';
import { pathOptions } from '../../src/codec/options.js';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { GatewayEvent } from '../../src/gateway/options.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { SimDevice } from './fleet.js';
import { image, tempDir } from './helpers.js';
import { CLASS_HEX, envelope, ServiceState, startUpstream, TRUST, type TestUpstream } from './upstream.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
});

const IMAGE = image(64 * 1024, 21); // 64 blocks of 1024
const HEX = bytesToHex(sha256(IMAGE));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The upstream serves the image either as a slow Block2-only resource
 * (`slow`: 15 ms per block, so the devices catch up with the fill; it knows
 * no Q-Block2) or as the file server's own file, with Q-Block2 (RFC 9177).
 */
async function setup(state = new ServiceState(), serving: 'slow' | 'file' = 'slow', events: GatewayEvent[] = []): Promise<{ dir: string; upstream: TestUpstream; gw: Gateway; base: string }> {
  const t = await tempDir('fleet');
  cleanups.push(t.remove);
  await mkdir(join(t.dir, 'served'));
  state.manifests.set(CLASS_HEX, envelope(IMAGE, 2));
  if (serving === 'file') await writeFile(join(t.dir, 'served', 'fw.bin'), IMAGE);
  else {
    state.overrides.set(`fw/sha256/${HEX}`, async (req) => {
      await sleep(15);
      return serveBlock2(req.message, bufferSource(IMAGE));
    });
  }
  const upstream = await startUpstream(join(t.dir, 'served'), 0, state);
  cleanups.unshift(() => upstream.close());
  const gw = await startGateway({
    upstream: upstream.uri,
    cacheDir: join(t.dir, 'gw'),
    host: '127.0.0.1',
    port: 0,
    verify: { trust: TRUST },
    maxForwardBackoffMs: 500,
    upstreamClient: { params: { ackTimeoutMs: 300, maxRetransmit: 2 } },
    onEvent: (e) => events.push(e),
  });
  cleanups.unshift(() => gw.close());
  return { dir: t.dir, upstream, gw, base: `coap://127.0.0.1:${gw.address().port}` };
}

async function devices(n: number, base: string): Promise<SimDevice[]> {
  const all = await Promise.all(Array.from({ length: n }, (_, i) => SimDevice.create(`dev-${String(i).padStart(3, '0')}`, base, 72 * 1024)));
  cleanups.unshift(async () => void (await Promise.all(all.map((d) => d.close()))));
  return all;
}

describe('a fleet behind one gateway', () => {
  it('100 devices update at once while the cache fills; the upstream serves each image block exactly once', { timeout: 180_000 }, async () => {
    const { upstream, gw, base } = await setup();
    const fleet = await devices(100, base);
    expect((await Promise.all(fleet.map((d) => d.register()))).every((c) => c === Code.CHANGED)).toBe(true);
    const results = await Promise.all(fleet.map((d) => d.update()));
    expect(results.map((r) => r.result)).toEqual(fleet.map(() => 'installed'));
    expect(results.every((r) => r.candidateSequence === 2 && r.blocksFetched === 64)).toBe(true);
    // Exactly one upstream request per block, however many devices asked.
    // This stand-in upstream serves no Q-Block2 (its probe drew 4.02, RFC 9177 §4.1): Block2 it was.
    expect(upstream.blocks.get(`fw/sha256/${HEX}`)).toEqual([...Array(64).keys()]);
    expect(upstream.qblocks.get(`fw/sha256/${HEX}`)).toBeUndefined();
    const s = gw.stats();
    expect(s.cache.fills).toBe(1);
    expect(s.cache).toMatchObject({ block2Fills: 1, qblock2Fills: 0 });
    expect(s.cache.fillingHits).toBeGreaterThan(0); // devices were served while the image still filled
    expect(s.cache.notYet).toBeGreaterThan(0); // and were told to come back for blocks not there yet
    expect(s.verification!.passed).toBe(1);
    for (const d of fleet) expect(await d.report('installed', { seq: 2 })).toBe(Code.CHANGED);
    await gw.flush();
    expect(upstream.state.accepted.length).toBe(100);
  });

  it('fills from an upstream that does Q-Block2 with Q-Block2, each block served upstream once; the devices install the right bytes', { timeout: 120_000 }, async () => {
    const events: GatewayEvent[] = [];
    const { upstream, gw, base } = await setup(new ServiceState(), 'file', events);
    const fleet = await devices(10, base);
    for (const d of fleet) expect(await d.register()).toBe(Code.CHANGED);
    const results = await Promise.all(fleet.map((d) => d.update()));
    expect(results.map((r) => r.result)).toEqual(fleet.map(() => 'installed'));
    expect(gw.stats().cache).toMatchObject({ fills: 1, completed: 1, qblock2Fills: 1, block2Fills: 0, upstreamBytes: IMAGE.length });
    expect(events.find((e) => e.type === 'fill-complete')).toMatchObject({ hex: HEX, size: IMAGE.length, mode: 'qblock2' });
    // No Block2 request for the image reached the upstream, and it sent each of its 64 blocks once.
    expect(upstream.blocks.get(`fw/sha256/${HEX}`)).toBeUndefined();
    expect([...(upstream.qblocks.get(`fw/sha256/${HEX}`) ?? [])].sort((a, b) => a - b)).toEqual([...Array(64).keys()]);
    // What the devices got from the gateway are the image's bytes (installed: their digest matched).
    const c = await openClient(`${base}/`);
    cleanups.unshift(() => c.close());
    const got = await fetchAll(c.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${HEX}`) });
    expect(Buffer.from(got.data).equals(Buffer.from(IMAGE))).toBe(true);
  });

  it('the uplink cut mid-rollout: devices with their image finish, reports queue, every one arrives exactly once after', { timeout: 180_000 }, async () => {
    const state = new ServiceState();
    const { dir, upstream, gw, base } = await setup(state);
    const fleet = await devices(30, base);
    for (const d of fleet) expect(await d.register()).toBe(Code.CHANGED);
    // The first ten update with the uplink up; the image is then in the cache.
    const early = await Promise.all(fleet.slice(0, 10).map((d) => d.update()));
    expect(early.every((r) => r.result === 'installed')).toBe(true);
    for (const d of fleet.slice(0, 10)) expect(await d.report('installed', { seq: 2 })).toBe(Code.CHANGED);
    await gw.flush();
    expect(state.accepted.length).toBe(10);
    // The upstream is killed while the other twenty are mid-rollout.
    const rest = fleet.slice(10);
    for (const d of rest) expect(await d.report('downloading', { seq: 2 })).toBe(Code.CHANGED);
    const running = Promise.all(rest.map((d) => d.update()));
    await upstream.close();
    const late = await running;
    expect(late.every((r) => r.result === 'installed')).toBe(true); // from the cache, the manifest still fresh
    for (const d of rest) expect(await d.report('installed', { seq: 2 })).toBe(Code.CHANGED);
    // A device repeating its last report (its answer was lost) is told 4.09: the gateway has it.
    rest[0]!.rseq--;
    expect(await rest[0]!.report('installed', { seq: 2 })).toBe(Code.CONFLICT);
    await sleep(800);
    await gw.flush();
    expect(gw.uplink.up).toBe(false);
    expect(gw.stats().queue.pending).toBeGreaterThanOrEqual(20);
    // The upstream comes back on the same port with its database.
    const back = await startUpstream(join(dir, 'served'), upstream.port, state);
    cleanups.unshift(() => back.close());
    for (let i = 0; i < 100 && gw.stats().queue.pending > 0; i++) await sleep(100);
    expect(gw.stats().queue.pending).toBe(0);
    expect(gw.uplink.up).toBe(true);
    const seen = state.accepted.map((a) => `${a.device}#${a.rseq}`);
    expect(new Set(seen).size).toBe(seen.length); // nothing twice
    expect(seen.length).toBe(10 + 20 * 2); // nothing lost
    for (const d of rest) {
      const mine = state.accepted.filter((a) => a.device === d.id);
      expect(mine.map((a) => a.state)).toEqual(['downloading', 'installed']); // in order
    }
    expect(gw.stats().queue.dropped).toBe(0);
  });
});
