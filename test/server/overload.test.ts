/**
 * A thousand devices fetching at once (issue 8, item 2): a cold read is one
 * disk read however many requests wait on it, so the endpoint does not
 * answer 5.03 because many devices asked for the same block at the same time.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { decodeUint, getOption } from '../../src/codec/options.js';
import type { CoapMessage } from '../../src/codec/message.js';
import { isCoapfwError, type CoapfwError } from '../../src/errors.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { fileResources } from '../../src/server/file-server.js';
import { FileRepository } from '../../src/server/files.js';
import { routeRequests } from '../../src/server/router.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-overload-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const content = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** `fetchers` clients, each fetching `pathOf(i)` at once from a cold server; returns what happened. */
async function stampede(repo: FileRepository, fetchers: number, pathOf: (i: number) => string, expected: (i: number) => Uint8Array) {
  const net = new MemNetwork();
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: systemRuntime });
  server.handle(routeRequests(fileResources(repo)));
  const clients = Array.from({ length: fetchers }, (_, i) => new CoapEndpoint(net.endpoint('10.1.0.1', 10_000 + i), { runtime: systemRuntime }));
  const results = await Promise.allSettled(
    clients.map((c, i) =>
      fetchAll((s, o) => c.request(SERVER, s, o), { runtime: systemRuntime, options: pathOptions(pathOf(i)), retry: { attempts: 1 } }).then((r) => {
        if (Buffer.compare(Buffer.from(r.data), Buffer.from(expected(i))) !== 0) throw new Error(`fetcher ${i}: wrong bytes`);
      }),
    ),
  );
  await Promise.all([server.close(), ...clients.map((c) => c.close())]);
  const failed = results.filter((r) => r.status === 'rejected');
  return { completed: results.length - failed.length, failed: failed.length, firstError: failed[0] && String((failed[0] as PromiseRejectedResult).reason), overloaded: server.stats.overloaded };
}

describe('many devices at once on a cold server', () => {
  it('1000 fetchers of one file all complete; every chunk is read from disk once', async () => {
    const data = content(20_000, 1);
    await writeFile(join(dir, 'fw.bin'), data);
    const repo = await FileRepository.open(dir);
    const r = await stampede(repo, 1000, () => '/files/fw.bin', () => data);
    console.log(`1000 fetchers of one file: ${r.completed} completed, ${r.failed} failed, ${r.overloaded} answered 5.03, ${repo.diskReads} disk reads`);
    await repo.close();
    expect(r.firstError).toBeUndefined();
    expect(r.completed).toBe(1000);
    expect(r.overloaded).toBe(0);
    expect(repo.diskReads).toBe(1); // 20,000 bytes: one 64 KiB chunk
  });

  it('1000 fetchers of 200 distinct files all complete (distinct reads queue, bounded)', async () => {
    for (let f = 0; f < 200; f++) await writeFile(join(dir, `fw-${f}.bin`), content(3000, f));
    const repo = await FileRepository.open(dir, { maxConcurrentReads: 16 });
    const r = await stampede(repo, 1000, (i) => `/files/fw-${i % 200}.bin`, (i) => content(3000, i % 200));
    console.log(`1000 fetchers of 200 files: ${r.completed} completed, ${r.failed} failed, ${r.overloaded} answered 5.03, ${repo.diskReads} disk reads, at most ${repo.maxReadsSeen} at once`);
    await repo.close();
    expect(r.firstError).toBeUndefined();
    expect(r.completed).toBe(1000);
    expect(r.overloaded).toBe(0);
    expect(repo.diskReads).toBe(200);
    expect(repo.maxReadsSeen).toBeLessThanOrEqual(16);
  });
});

describe('beyond the bounds', () => {
  it('beyond maxConcurrentReads + maxQueuedReads a distinct read is refused with 5.03 + Max-Age 1; waiters on one read are not', async () => {
    await writeFile(join(dir, 'a.bin'), content(100, 1));
    await writeFile(join(dir, 'b.bin'), content(100, 2));
    await writeFile(join(dir, 'c.bin'), content(100, 3));
    const repo = await FileRepository.open(dir, { maxConcurrentReads: 1, maxQueuedReads: 0 });
    const b = repo.byRelativePath('b.bin')!;
    const handler = routeRequests(fileResources(repo));
    const get = (p: string): CoapMessage => ({ type: MessageType.CON, code: Code.GET, messageId: 1, token: new Uint8Array(), options: pathOptions(p), payload: new Uint8Array() });
    const peer = { address: '127.0.0.1', port: 1 };
    // Three requests for a.bin share one cold read; b.bin would be a second read in flight.
    const as = [1, 2, 3].map(() => Promise.resolve(handler({ message: get('/files/a.bin'), peer })));
    const refused = await Promise.resolve(handler({ message: get('/files/b.bin'), peer }));
    expect(refused!.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(decodeUint(getOption({ ...get('/'), options: [...refused!.options!] }, OptionNumber.MAX_AGE)!)).toBe(1);
    for (const r of await Promise.all(as)) expect(r!.code).toBe(Code.CONTENT);
    expect(repo.diskReads).toBe(1);
    // While b.bin's read holds the only slot, a.bin's cached chunk is still served; another distinct read is LIMIT_EXCEEDED.
    const first = Promise.resolve(b.read(0, 10));
    expect(await Promise.resolve(repo.byRelativePath('a.bin')!.read(50, 10))).toEqual(content(100, 1).subarray(50, 60));
    const e = await Promise.resolve(repo.byRelativePath('c.bin')!.read(0, 10)).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'LIMIT_EXCEEDED')).toBe(true);
    expect((e as CoapfwError).maxAge).toBe(1);
    expect(await first).toEqual(content(100, 2).subarray(0, 10));
    await repo.close();
  });

  it('the endpoint\'s own overload answer carries Max-Age 1', async () => {
    const net = new MemNetwork();
    const rt = new FakeRuntime(1);
    const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt, maxConcurrentRequests: 0 });
    server.handle(() => ({ code: Code.CONTENT }));
    const client = new CoapEndpoint(net.endpoint('10.1.0.1', 1), { runtime: rt });
    const res = await client.request(SERVER, { code: Code.GET });
    expect(res.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(decodeUint(getOption(res, OptionNumber.MAX_AGE)!)).toBe(1);
  });
});
