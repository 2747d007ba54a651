/**
 * /.well-known/core is no CPU denial of service (issue 8, item 3): 10,000
 * files, 22 rotating filter queries. The work is counted, not timed: links
 * walked by filterLinks plus index entries visited must stay O(matches) per
 * computed query, where a linear filter walks every link every time.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decodeBlock, encodeBlock } from '../../src/codec/block.js';
import { filterLinks, formatLinks, type Link } from '../../src/codec/link-format.js';
import type { CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { decodeUint, getOption, pathOptions } from '../../src/codec/options.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import { directoryLinks, fileResources } from '../../src/server/file-server.js';
import { FileRepository } from '../../src/server/files.js';
import { LinkIndex } from '../../src/server/link-index.js';
import { ObserveRegistry } from '../../src/server/observe.js';
import { routeRequests } from '../../src/server/router.js';
import { StatusTracker } from '../../src/server/status.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';

// Count every link a linear filter walks, wherever it is called from.
const work = vi.hoisted(() => ({ filtered: 0, counting: true }));
vi.mock('../../src/codec/link-format.js', async (importOriginal) => {
  const mod = await importOriginal<typeof import('../../src/codec/link-format.js')>();
  return {
    ...mod,
    filterLinks: (links: readonly Link[], q: string | undefined) => {
      if (work.counting) work.filtered += links.length;
      return mod.filterLinks(links, q);
    },
  };
});

const N = 10_000;
let dir: string;
let repo: FileRepository;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-core-'));
  for (let d = 0; d < 100; d++) {
    await mkdir(join(dir, `d${String(d).padStart(2, '0')}`));
    await Promise.all(
      Array.from({ length: N / 100 }, (_, k) => {
        const i = d * 100 + k;
        return writeFile(join(dir, `d${String(d).padStart(2, '0')}`, `f-${String(i).padStart(4, '0')}.bin`), `file ${i} `.padEnd(10 + (i % 97), '*'));
      }),
    );
  }
  repo = await FileRepository.open(dir, { maxFiles: N });
}, 120_000);
afterAll(async () => {
  await repo?.close();
  await rm(dir, { recursive: true, force: true });
});

const QUERIES = [
  'rt=firmware', 'rt=firm*', 'rt=coapfw.status', 'rt=*', 'href=/files/d07/*', 'href=/files/d42/f-4242.bin', 'href=/fw/sha256/0*',
  'href=/fw/sha256/ab*', 'title=d13/f-1342.bin', 'title=d5*', 'sz=42', 'sz=4*', 'ct=42', 'ct=50', 'obs=*', 'if=sensor',
  'href=/nothing*', 'rt=firmware*', 'href=*', 'title=d99/*', 'sz=106', 'href=/status',
];

const getMsg = (query: string, block?: number): CoapMessage => ({
  type: MessageType.CON,
  code: Code.GET,
  messageId: 1,
  token: Uint8Array.of(1),
  options: [
    ...pathOptions('/.well-known/core'),
    { number: OptionNumber.URI_QUERY, value: new TextEncoder().encode(query) },
    ...(block === undefined ? [] : [{ number: OptionNumber.BLOCK2, value: encodeBlock({ num: block, more: false, szx: 6 }) }]),
  ],
  payload: new Uint8Array(),
});
const option = (r: ResponseSpec, n: number) => r.options?.find((o) => o.number === n)?.value;

describe(`/.well-known/core over ${N} files`, () => {
  it('22 rotating queries, 5 rounds: right answers, work O(matches) per computed query', async () => {
    expect(repo.list()).toHaveLength(N);
    const rt = new FakeRuntime(1);
    const status = new StatusTracker({ runtime: rt });
    const resolve = fileResources(repo, { status, observe: new ObserveRegistry(), runtime: rt, wellKnown: { perPeer: { ratePerSecond: 1000, burst: 1000 }, overall: { ratePerSecond: 1000, burst: 1000 } } });
    const handler = routeRequests(resolve);
    const peer = { address: '10.0.0.7', port: 7 };
    work.counting = false;
    const all = [...directoryLinks(repo, true), { target: '/status', attributes: { rt: 'coapfw.status', ct: '50' } }];
    const expected = new Map(QUERIES.map((q) => [q, { text: new TextEncoder().encode(formatLinks(filterLinks(all, q))), matches: filterLinks(all, q).length }]));
    work.counting = true;
    work.filtered = 0;
    const visitedBefore = resolve.wellKnown?.entriesVisited ?? 0;
    for (let round = 0; round < 5; round++) {
      for (const q of QUERIES) {
        const { text } = expected.get(q)!;
        const res = (await handler({ message: getMsg(q), peer })) as ResponseSpec;
        expect(res.code, q).toBe(Code.CONTENT);
        const block2 = option(res, OptionNumber.BLOCK2);
        const size = block2 === undefined ? res.payload!.length : decodeUint(option(res, OptionNumber.SIZE2)!);
        expect(size, q).toBe(text.length);
        expect(Buffer.from(res.payload!).equals(Buffer.from(text.subarray(0, 1024))), q).toBe(true);
        if (block2 !== undefined && decodeBlock(block2).more) {
          // A block from the middle, as a device resuming would ask: same ETag, right bytes.
          const mid = Math.floor(text.length / 2048);
          const r2 = (await handler({ message: getMsg(q, mid), peer })) as ResponseSpec;
          expect(Buffer.from(r2.payload!).equals(Buffer.from(text.subarray(mid * 1024, mid * 1024 + 1024))), `${q} block ${mid}`).toBe(true);
          expect(option(r2, OptionNumber.ETAG)).toEqual(option(res, OptionNumber.ETAG));
        }
      }
    }
    const bound = QUERIES.reduce((n, q) => n + expected.get(q)!.matches + 64, 0);
    const visited = work.filtered + (resolve.wellKnown?.entriesVisited ?? 0) - visitedBefore;
    console.log(`/.well-known/core: ${QUERIES.length * 5} queries over ${all.length} links, ${visited} links/entries visited (bound ${bound}), ${work.filtered} by linear filtering`);
    expect(visited).toBeLessThanOrEqual(bound);
  }, 120_000);

  it('one ETag per index version, shared by every query; a new version a new ETag', async () => {
    const rt = new FakeRuntime(1);
    const resolve = fileResources(repo, { runtime: rt });
    const handler = routeRequests(resolve);
    const peer = { address: '10.0.0.8', port: 8 };
    const etag = async (q: string) => option((await handler({ message: getMsg(q), peer })) as ResponseSpec, OptionNumber.ETAG);
    const e1 = await etag('rt=firmware');
    expect(await etag('href=/files/d01/*')).toEqual(e1);
    await writeFile(join(dir, 'd00', 'f-0000.bin'), 'changed content'); // the index is full (maxFiles): change a file
    expect(await repo.refresh()).toEqual(['d00/f-0000.bin']);
    const e2 = await etag('rt=firmware');
    expect(e2).not.toEqual(e1);
    expect(resolve.wellKnown.stats.builds).toBe(2);
  });
});

describe('/.well-known/core rate limit', () => {
  const small = async () => {
    const rt = new FakeRuntime(2);
    const resolve = fileResources(repo, { runtime: rt, wellKnown: { perPeer: { ratePerSecond: 1, burst: 3 }, maxPeers: 50, overall: { ratePerSecond: 10, burst: 20 } } });
    return { rt, resolve, handler: routeRequests(resolve) };
  };

  it('a peer past its burst of uncached queries gets 4.29 + Max-Age; cached answers and other peers are not limited', async () => {
    const { rt, resolve, handler } = await small();
    const a = { address: '10.0.1.1', port: 1 };
    const ask = async (q: string, peer = a) => (await handler({ message: getMsg(q), peer })) as ResponseSpec;
    for (const q of ['sz=10', 'sz=11', 'sz=12']) expect((await ask(q)).code).toBe(Code.CONTENT);
    const limited = await ask('sz=13');
    expect(limited.code).toBe(Code.TOO_MANY_REQUESTS);
    expect(decodeUint(option(limited, OptionNumber.MAX_AGE)!)).toBe(1);
    expect((await ask('sz=10')).code).toBe(Code.CONTENT); // cached: costs nothing
    expect((await ask('sz=13', { address: '10.0.1.2', port: 1 })).code).toBe(Code.CONTENT);
    rt.advance(1000);
    expect((await ask('sz=14')).code).toBe(Code.CONTENT);
    expect(resolve.wellKnown.stats.limited).toBe(1);
  });

  it('a broad query costs more: one token per 1,000 links matched', async () => {
    const rt = new FakeRuntime(3);
    const resolve = fileResources(repo, { runtime: rt, wellKnown: { perPeer: { ratePerSecond: 1, burst: 20 } } });
    const handler = routeRequests(resolve);
    const peer = { address: '10.0.3.1', port: 1 };
    const ask = async (q: string) => (await handler({ message: getMsg(q), peer })) as ResponseSpec;
    expect((await ask('href=*')).code).toBe(Code.CONTENT); // 20,000+ links: 1 + 20 tokens of a bucket of 20
    const next = await ask('sz=20');
    expect(next.code).toBe(Code.TOO_MANY_REQUESTS);
    expect(decodeUint(option(next, OptionNumber.MAX_AGE)!)).toBe(2);
    rt.advance(2000);
    expect((await ask('sz=20')).code).toBe(Code.CONTENT);
  });

  it('spoofed source addresses meet the overall budget (5.03 + Max-Age); the peer table stays bounded', async () => {
    const { resolve, handler } = await small();
    const codes: number[] = [];
    for (let i = 0; i < 200; i++) {
      const res = (await handler({ message: getMsg(`sz=${i}`), peer: { address: `10.2.${i >> 8}.${i & 255}`, port: 5 } })) as ResponseSpec;
      codes.push(res.code);
    }
    expect(codes.filter((c) => c === Code.CONTENT)).toHaveLength(20);
    expect(codes.filter((c) => c === Code.SERVICE_UNAVAILABLE)).toHaveLength(180);
    console.log(`/.well-known/core spoofed flood: 200 queries from 200 addresses, ${resolve.wellKnown.stats.computed} computed, ${resolve.wellKnown.stats.limited} limited`);
  });
});

describe('LinkIndex agrees with filterLinks (RFC 6690 §4.1)', () => {
  it('on random documents and queries, matches and bytes read in random pieces', () => {
    work.counting = false;
    const word = fc.constantFrom('a', 'ab', 'abc', 'b', 'ba', 'x y', 'a b', '', 'firmware', 'fw', '1', '12');
    const link = fc.record({
      target: fc.constantFrom('/a', '/ab', '/a/b', '/b', '/fw/1', '/fw/12', '/x'),
      attributes: fc.dictionary(fc.constantFrom('rt', 'if', 'sz', 'title', 'obs'), fc.oneof(word, fc.constant(true as const)), { maxKeys: 4 }),
    });
    const query = fc.oneof(
      fc.constant(undefined),
      fc.constantFrom('rt', 'obs', ''),
      fc.tuple(fc.constantFrom('rt', 'if', 'sz', 'title', 'obs', 'href', 'ct'), word, fc.boolean()).map(([n, v, star]) => `${n}=${v}${star ? '*' : ''}`),
    );
    let runs = 0;
    fc.assert(
      fc.property(fc.array(link, { maxLength: 25 }), query, fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }), (links, q, pieces) => {
        runs++;
        const index = new LinkIndex(links);
        const want = filterLinks(links, q);
        const ids = index.match(q);
        expect(ids === undefined ? links : [...ids].map((i) => links[i]!)).toEqual(want);
        const src = index.source(ids);
        const text = new TextEncoder().encode(formatLinks(want));
        expect(src.size).toBe(text.length);
        const got: number[] = [];
        for (let at = 0, k = 0; at < src.size; k++) {
          const chunk = src.read(at, pieces[k % pieces.length]!) as Uint8Array;
          got.push(...chunk);
          at += chunk.length;
        }
        expect(Uint8Array.from(got)).toEqual(text);
      }),
      { numRuns: 2000, seed: 6690 },
    );
    work.counting = true;
    console.log(`LinkIndex vs filterLinks: ${runs} random documents and queries, 0 failures`);
  });
});
