/**
 * The block-wise image cache on its own, with a gated in-memory upstream:
 * blocks served while the image fills (5.03 + Max-Age for those not there
 * yet), each block fetched upstream once, the last block held until the
 * SHA-256 matched, hostile bytes never served, stall and resume, LRU within
 * the size limit, and a restart that never takes a partial file for an image.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Code } from '../../src/codec/numbers.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import type { FetchedBlock } from '../../src/blockwise/fetch.js';
import { CoapfwError } from '../../src/errors.js';
import { BlockCache, type BlockCacheOptions, type CacheEvent } from '../../src/gateway/content-cache.js';
import type { BlockFetcher, ResumeFrom } from '../../src/gateway/fill.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { blockGet, block2Of, GatedUpstream, hexOf, image, maxAgeOf, tempDir, until } from './helpers.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function openCache(options: Partial<BlockCacheOptions> = {}, dir?: string): Promise<{ cache: BlockCache; dir: string; rt: FakeRuntime; events: CacheEvent[] }> {
  let d = dir;
  if (d === undefined) {
    const t = await tempDir('cache');
    cleanups.push(t.remove);
    d = t.dir;
  }
  const rt = new FakeRuntime();
  const events: CacheEvent[] = [];
  const cache = await BlockCache.open({ dir: d, runtime: rt, onEvent: (e) => events.push(e), ...options });
  cleanups.unshift(() => cache.close());
  return { cache, dir: d, rt, events };
}

const resolved = async (r: ResponseSpec | Promise<ResponseSpec>): Promise<ResponseSpec> => r;

describe('BlockCache', () => {
  it('serves blocks while the image fills, 5.03 with Max-Age for the rest, each block fetched once', async () => {
    const { cache } = await openCache();
    const img = image(10 * 1024 + 100, 1); // 11 blocks
    const hex = hexOf(img);
    const up = new GatedUpstream(img);
    const first = await resolved(cache.serve(blockGet(0), hex, up.fetch));
    expect(first.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(maxAgeOf(first)).toBeGreaterThanOrEqual(1);
    up.release(4);
    await until(() => up.sent.length === 4);
    await until(async () => (await resolved(cache.serve(blockGet(3), hex, up.fetch))).code === Code.CONTENT);
    for (let n = 0; n < 4; n++) {
      const r = await resolved(cache.serve(blockGet(n), hex, up.fetch));
      expect(r.code, `block ${n}`).toBe(Code.CONTENT);
      expect(Buffer.from(r.payload!).equals(Buffer.from(img.subarray(n * 1024, (n + 1) * 1024)))).toBe(true);
      expect(block2Of(r)).toEqual({ num: n, more: true, szx: 6 });
    }
    expect((await resolved(cache.serve(blockGet(4), hex, up.fetch))).code).toBe(Code.SERVICE_UNAVAILABLE);
    up.release();
    await until(() => cache.has(hex));
    for (let n = 0; n < 11; n++) {
      const r = await resolved(cache.serve(blockGet(n), hex, up.fetch));
      expect(r.code).toBe(Code.CONTENT);
      expect(Buffer.from(r.payload!).equals(Buffer.from(img.subarray(n * 1024, (n + 1) * 1024)))).toBe(true);
    }
    // A thousand more requests for any block: the upstream still sent each block once.
    for (let i = 0; i < 1000; i++) await resolved(cache.serve(blockGet(i % 11), hex, up.fetch));
    expect(up.sent).toEqual([...Array(11).keys()]);
    expect(cache.stats.fills).toBe(1);
    expect(cache.stats.upstreamBytes).toBe(img.length);
  });

  it('holds the last block until the whole image hashed to its address', async () => {
    const { cache } = await openCache();
    const img = image(3 * 1024 + 10, 2);
    const hex = hexOf(img);
    const up = new GatedUpstream(img);
    cache.serve(blockGet(0), hex, up.fetch);
    up.release(3);
    await until(() => up.sent.length === 3);
    await until(async () => (await resolved(cache.serve(blockGet(2), hex, up.fetch))).code === Code.CONTENT);
    // Blocks 0..2 are here; block 3 (the last, 10 bytes) is not: 5.03 even once it arrived, until verified.
    expect((await resolved(cache.serve(blockGet(3), hex, up.fetch))).code).toBe(Code.SERVICE_UNAVAILABLE);
    up.release();
    await until(() => cache.has(hex));
    const last = await resolved(cache.serve(blockGet(3), hex, up.fetch));
    expect(last.code).toBe(Code.CONTENT);
    expect(last.payload!.length).toBe(10);
  });

  it('never serves an image whose upstream bytes do not match its address: the last block is withheld, the fill discarded and counted', async () => {
    const { cache, dir, events } = await openCache();
    const good = image(4 * 1024, 3);
    const bad = Uint8Array.from(good);
    bad[4000] ^= 0xff; // in the last block
    const hex = hexOf(good);
    const up = new GatedUpstream(bad);
    const answers: ResponseSpec[] = [];
    cache.serve(blockGet(0), hex, up.fetch);
    up.release();
    await until(() => cache.stats.failed === 1);
    for (let n = 0; n < 4; n++) answers.push(await resolved(cache.serve(blockGet(n), hex, up.fetch)));
    expect(answers.map((a) => a.code)).toEqual([Code.BAD_GATEWAY, Code.BAD_GATEWAY, Code.BAD_GATEWAY, Code.BAD_GATEWAY]);
    expect(cache.stats.mismatches).toBe(1);
    expect(cache.has(hex)).toBe(false);
    expect(await readdir(join(dir, 'objects'))).toEqual([]);
    expect(await readdir(join(dir, 'partial'))).toEqual([]);
    expect(events.some((e) => e.type === 'fill-failed' && e.reason === 'digest')).toBe(true);
    // The failure is remembered: no new upstream fetch within the negative TTL.
    expect(up.sent.length).toBe(4);
  });

  it('fails an image whose upstream ETag changes mid-transfer, and counts it', async () => {
    const { cache } = await openCache();
    const img = image(5 * 1024, 4);
    const hex = hexOf(img);
    const up = new GatedUpstream(img);
    up.etagAt = 2;
    cache.serve(blockGet(0), hex, up.fetch);
    up.release();
    await until(() => cache.stats.failed === 1);
    expect(cache.stats.etagChanges).toBe(1);
    expect((await resolved(cache.serve(blockGet(0), hex, up.fetch))).code).toBe(Code.BAD_GATEWAY);
  });

  it('resumes a stalled fill from the first missing byte, fetching nothing twice', async () => {
    const { cache, rt } = await openCache();
    const img = image(6 * 1024, 5);
    const hex = hexOf(img);
    const up = new GatedUpstream(img);
    up.failAt = 3;
    cache.serve(blockGet(0), hex, up.fetch);
    up.release();
    await until(() => cache.stats.fills === 1 && up.sent.length === 3);
    await until(async () => (await resolved(cache.serve(blockGet(1), hex, up.fetch))).code === Code.CONTENT);
    const waiting = await resolved(cache.serve(blockGet(4), hex, up.fetch));
    expect(waiting.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(maxAgeOf(waiting)).toBeGreaterThanOrEqual(1);
    rt.advance(1500); // past the first back-off: the next request resumes the fill
    await resolved(cache.serve(blockGet(4), hex, up.fetch));
    await until(() => cache.has(hex));
    expect(up.sent).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('takes blocks out of order and overlapping (Q-Block2), and a resume names the blocks held ahead of the gap', async () => {
    const { cache, rt, events } = await openCache();
    const img = image(6 * 1024 - 300, 6); // 6 blocks, the last one short
    const hex = hexOf(img);
    const block = (num: number): FetchedBlock => {
      const offset = num * 1024;
      return { num, szx: 6, offset, data: img.subarray(offset, offset + 1024), more: offset + 1024 < img.length, etag: Uint8Array.of(7), total: img.length };
    };
    const runs: ResumeFrom[] = [];
    const fetch: BlockFetcher = async (from, onBlock) => {
      runs.push(from);
      // Handed over at once, not awaited one by one: the fill must take them in turn.
      if (runs.length === 1) {
        await Promise.all([4, 3, 1].map((n) => onBlock(block(n))));
        throw new CoapfwError('TIMEOUT', 'upstream: the burst stopped');
      }
      await Promise.all([5, 0, 2].map((n) => onBlock(block(n))));
      return 'qblock2';
    };
    cache.serve(blockGet(0), hex, fetch);
    await until(() => events.some((e) => e.type === 'fill-stalled'));
    // Nothing from 0 yet: block 1 may not be served although it is here.
    expect((await resolved(cache.serve(blockGet(1), hex, fetch))).code).toBe(Code.SERVICE_UNAVAILABLE);
    rt.advance(1500);
    await resolved(cache.serve(blockGet(0), hex, fetch));
    await until(() => cache.has(hex) && events.some((e) => e.type === 'fill-complete'));
    expect(runs[0]).toMatchObject({ startOffset: 0, held: undefined, maxAheadBytes: 4 << 20 });
    const held = runs[1]!.held!;
    expect(runs[1]!.startOffset).toBe(0);
    expect([...Array(held.total).keys()].filter((n) => held.has(n))).toEqual([1, 3, 4]);
    expect(cache.stats).toMatchObject({ completed: 1, qblock2Fills: 1, block2Fills: 0, upstreamBytes: img.length });
    expect(events.find((e) => e.type === 'fill-complete')).toMatchObject({ mode: 'qblock2', size: img.length });
    for (let n = 0; n < 6; n++) {
      const r = await resolved(cache.serve(blockGet(n), hex, fetch));
      expect(Buffer.from(r.payload!).equals(Buffer.from(img.subarray(n * 1024, (n + 1) * 1024))), `block ${n}`).toBe(true);
    }
  });

  it('keeps within maxBytes, dropping the least recently served image', async () => {
    const { cache, events } = await openCache({ maxBytes: 10_000 });
    const imgs = [image(4000, 10), image(4000, 11), image(4000, 12)];
    for (const img of imgs.slice(0, 2)) {
      const up = new GatedUpstream(img);
      up.release();
      cache.serve(blockGet(0), hexOf(img), up.fetch);
      await until(() => cache.has(hexOf(img)));
    }
    await resolved(cache.serve(blockGet(0), hexOf(imgs[0]!), new GatedUpstream(imgs[0]!).fetch)); // 0 is now the most recent
    const up = new GatedUpstream(imgs[2]!);
    up.release();
    cache.serve(blockGet(0), hexOf(imgs[2]!), up.fetch);
    await until(() => cache.has(hexOf(imgs[2]!)));
    expect(cache.has(hexOf(imgs[0]!))).toBe(true);
    expect(cache.has(hexOf(imgs[1]!))).toBe(false);
    expect(cache.objects.bytes).toBe(8000);
    expect(events.filter((e) => e.type === 'evicted').map((e) => (e as { hex: string }).hex)).toEqual([hexOf(imgs[1]!)]);
  });

  it('refuses an image larger than the whole cache', async () => {
    const { cache } = await openCache({ maxBytes: 2000 });
    const img = image(3000, 13);
    const up = new GatedUpstream(img);
    up.release();
    cache.serve(blockGet(0), hexOf(img), up.fetch);
    await until(() => cache.stats.failed === 1);
    const r = await resolved(cache.serve(blockGet(0), hexOf(img), up.fetch));
    expect(r.code).toBe(Code.INTERNAL_SERVER_ERROR);
    expect(up.sent).toEqual([0]);
  });

  it('holds an image whole when the check asks, and never serves one the check refuses', async () => {
    const refused: string[] = [];
    const { cache } = await openCache({
      check: {
        holdWhole: (head) => head[0] === 0xd8,
        verify: (bytes, hex) => {
          refused.push(hex);
          if (bytes[1] === 0x6b) throw new Error('bad signature');
        },
      },
    });
    const env = image(2500, 14);
    env[0] = 0xd8;
    env[1] = 0x6b;
    const up = new GatedUpstream(env);
    cache.serve(blockGet(0), hexOf(env), up.fetch);
    up.release(2);
    await until(() => up.sent.length === 2);
    expect((await resolved(cache.serve(blockGet(0), hexOf(env), up.fetch))).code).toBe(Code.SERVICE_UNAVAILABLE);
    up.release();
    await until(() => cache.stats.failed === 1);
    expect(cache.stats.refused).toBe(1);
    expect((await resolved(cache.serve(blockGet(0), hexOf(env), up.fetch))).code).toBe(Code.BAD_GATEWAY);
    expect(cache.has(hexOf(env))).toBe(false);
  });

  it('after a restart: partial files are removed, images are hashed again and a damaged one is dropped', async () => {
    const t = await tempDir('restart');
    cleanups.push(t.remove);
    const img = image(5000, 15);
    const first = await openCache({}, t.dir);
    const up = new GatedUpstream(img);
    up.release(2);
    first.cache.serve(blockGet(0), hexOf(img), up.fetch);
    await until(() => up.sent.length === 2);
    // A crash now: the partial file is there, the image is not complete.
    expect(existsSync(join(t.dir, 'partial', `${hexOf(img)}.part`))).toBe(true);
    await first.cache.close();
    await first.cache.close(); // twice: the cleanup closes it again
    const other = image(3000, 16);
    await mkdir(join(t.dir, 'objects'), { recursive: true });
    await writeFile(join(t.dir, 'objects', hexOf(other)), other.subarray(0, 2000)); // torn: shorter than its name says
    await writeFile(join(t.dir, 'objects', hexOf(img)), img.subarray(0, 2048)); // the partial, as if renamed too early
    const second = await openCache({}, t.dir);
    expect(second.cache.stats.discardedPartials).toBe(1);
    expect(second.cache.stats.damaged).toBe(2);
    expect(second.cache.has(hexOf(img))).toBe(false);
    expect(await readdir(join(t.dir, 'objects'))).toEqual([]);
    const up2 = new GatedUpstream(img);
    up2.release();
    second.cache.serve(blockGet(0), hexOf(img), up2.fetch);
    await until(() => second.cache.has(hexOf(img)));
    await second.cache.close();
    const third = await openCache({}, t.dir);
    expect(third.cache.has(hexOf(img))).toBe(true);
    expect(third.cache.stats.damaged).toBe(0);
  });
});
