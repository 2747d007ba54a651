import { describe, expect, it } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { fetchAll, fetchBlocks, type FetchedBlock } from '../../src/blockwise/fetch.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { bufferSource, type ByteSource } from '../../src/blockwise/source.js';
import { encodeBlock } from '../../src/codec/block.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint, type RequestHandler } from '../../src/messaging/endpoint.js';
import { ImpairedTransport } from '../../src/transport/impaired.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { isCoapfwError } from '../../src/errors.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const image = Uint8Array.from({ length: 10_000 }, (_, i) => (i * 31 + 7) & 0xff);

function setup(handler: RequestHandler) {
  const net = new MemNetwork();
  const rt = new FakeRuntime(3);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  server.handle(handler);
  const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
  const request = (spec: Parameters<CoapEndpoint['request']>[1], o: Parameters<CoapEndpoint['request']>[2]) => client.request(SERVER, spec, o);
  return { net, rt, request };
}

const serving = (src: () => ByteSource, counter?: { n: number }): RequestHandler => (req) => {
  if (counter) counter.n++;
  return serveBlock2(req.message, src());
};

async function collect(it: AsyncIterable<FetchedBlock>): Promise<FetchedBlock[]> {
  const out: FetchedBlock[] = [];
  for await (const b of it) out.push(b);
  return out;
}

describe('fetchBlocks', () => {
  it('fetches all blocks in order with progress', async () => {
    const src = bufferSource(image);
    const { rt, request } = setup(serving(() => src));
    const progress: number[] = [];
    const { data, etag } = await fetchAll(request, { runtime: rt, options: pathOptions('/x'), szx: 5, onProgress: (p) => progress.push(p.received) });
    expect(data).toEqual(image);
    expect(etag).toEqual(src.etag);
    expect(progress.at(-1)).toBe(10_000);
    expect(progress).toHaveLength(Math.ceil(10_000 / 512));
  });

  it('resumes at a start block with the expected ETag, fetching only the rest', async () => {
    const src = bufferSource(image);
    const counter = { n: 0 };
    const { rt, request } = setup(serving(() => src, counter));
    const blocks = await collect(fetchBlocks(request, { runtime: rt, options: [], szx: 6, startBlock: 7, etag: src.etag }));
    expect(counter.n).toBe(3);
    expect(blocks[0]!.offset).toBe(7 * 1024);
    expect(Buffer.concat(blocks.map((b) => b.data))).toEqual(Buffer.from(image.subarray(7 * 1024)));
  });

  it('raises ETAG_MISMATCH when the resource changes mid-transfer, never stitching versions', async () => {
    let src = bufferSource(image);
    const { rt, request } = setup(serving(() => src));
    const got: FetchedBlock[] = [];
    let err: unknown;
    try {
      for await (const b of fetchBlocks(request, { runtime: rt, options: [], szx: 6 })) {
        got.push(b);
        if (got.length === 3) src = bufferSource(image.map((x) => x ^ 1));
      }
    } catch (e) {
      err = e;
    }
    expect(isCoapfwError(err, 'ETAG_MISMATCH')).toBe(true);
    expect(got).toHaveLength(3);
  });

  it('raises ETAG_MISMATCH when resuming against a replaced resource', async () => {
    const src = bufferSource(image);
    const { rt, request } = setup(serving(() => src));
    const stale = new Uint8Array(8).fill(9);
    await expect(collect(fetchBlocks(request, { runtime: rt, options: [], startBlock: 2, etag: stale }))).rejects.toMatchObject({ code: 'ETAG_MISMATCH' });
  });

  it('refuses a representation larger than maxSize at the block that goes past it', async () => {
    const src = bufferSource(image);
    const counter = { n: 0 };
    const { rt, request } = setup(serving(() => src, counter));
    await expect(collect(fetchBlocks(request, { runtime: rt, options: [], szx: 6, maxSize: 4000 }))).rejects.toMatchObject({ code: 'TOO_LARGE' });
    expect(counter.n).toBe(4); // blocks 0..3; block 3 ends at 4096 > 4000
  });

  it('follows a server that picks a smaller block size', async () => {
    const src = bufferSource(image);
    const { rt, request } = setup((req) => serveBlock2(req.message, src, { maxSzx: 2 }));
    const blocks = await collect(fetchBlocks(request, { runtime: rt, options: [], szx: 6 }));
    expect(blocks[0]!.szx).toBe(2);
    expect(Buffer.concat(blocks.map((b) => b.data))).toEqual(Buffer.from(image));
  });

  it('rejects a block at the wrong offset and a short non-final block', async () => {
    const src = bufferSource(image);
    const wrongNum = setup((req) => {
      const r = serveBlock2(req.message, src);
      return { ...r, options: [...(r as { options: [] }).options.filter((o: { number: number }) => o.number !== OptionNumber.BLOCK2), { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 3, more: true, szx: 6 }) }] } as never;
    });
    await expect(collect(fetchBlocks(wrongNum.request, { runtime: wrongNum.rt, options: [] }))).rejects.toMatchObject({ code: 'BLOCK_MISMATCH' });
    const short = setup((req) => {
      const r = serveBlock2(req.message, src) as { code: number; options: []; payload: Uint8Array };
      return { ...r, payload: r.payload.subarray(0, 100) };
    });
    await expect(collect(fetchBlocks(short.request, { runtime: short.rt, options: [] }))).rejects.toMatchObject({ code: 'BLOCK_MISMATCH' });
  });

  it('rejects a last block that ends before the announced Size2 (truncated representation)', async () => {
    const src = bufferSource(image);
    const lying = { ...src, size: src.size + 1000 }; // announces 11000 bytes, has 10000
    const { rt, request } = setup((req) => serveBlock2(req.message, { ...lying, read: (o, l) => src.read(o, Math.min(l, Math.max(0, src.size - o))) }));
    await expect(collect(fetchBlocks(request, { runtime: rt, options: [], szx: 6 }))).rejects.toMatchObject({ code: 'BLOCK_MISMATCH' });
  });

  it('reports a 4.04 as RESPONSE_CODE with the diagnostic', async () => {
    const { rt, request } = setup(() => ({ code: Code.NOT_FOUND, payload: new TextEncoder().encode('no such file') }));
    await expect(collect(fetchBlocks(request, { runtime: rt, options: [] }))).rejects.toThrow(/4\.04: no such file/);
  });

  it('retries a block whose exchange timed out, with back-off, then succeeds', async () => {
    const src = bufferSource(image);
    const { net, rt, request } = setup(serving(() => src));
    let dropping = true;
    net.filter = (from) => !(dropping && from.port === SERVER.port);
    let retries = -1;
    const it = fetchBlocks(request, { runtime: rt, options: [], szx: 6, retry: { attempts: 3, baseMs: 1000 }, onProgress: (p) => (retries = p.retries) });
    const first = it.next();
    // Exhaust the message layer's retransmissions once (MAX_TRANSMIT_WAIT <= 93 s), then heal the network.
    for (let t = 0; t < 100; t++) {
      rt.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    dropping = false;
    for (let t = 0; t < 100; t++) {
      rt.advance(1000);
      await new Promise((r) => setImmediate(r));
    }
    const r = await first;
    expect(r.done).toBe(false);
    expect(r.value!.data).toEqual(image.subarray(0, 1024));
    await it.next();
    expect(retries).toBe(1);
    await it.return(undefined);
  });

  it('stops at once when aborted', async () => {
    const src = bufferSource(image);
    const { rt, request } = setup(serving(() => src));
    const ctl = new AbortController();
    const it = fetchBlocks(request, { runtime: rt, options: [], signal: ctl.signal });
    await it.next();
    ctl.abort();
    await expect(it.next()).rejects.toMatchObject({ code: 'ABORTED' });
  });
});

describe('block-wise over lossy loopback UDP', () => {
  it('moves 1 MiB through 10% loss, duplication and reordering with the right bytes', async () => {
    const big = Uint8Array.from({ length: 1024 * 1024 }, (_, i) => (i * 2654435761) >>> 24);
    const src = bufferSource(big);
    const params = { ackTimeoutMs: 10, ackRandomFactor: 1.5, maxRetransmit: 8 };
    const serverUdp = await UdpTransport.bind({ host: '127.0.0.1' });
    const server = new CoapEndpoint(new ImpairedTransport(serverUdp, { loss: 0.1, reorder: 0.1, duplicate: 0.02, seed: 11 }), { runtime: systemRuntime, params });
    server.handle((req) => serveBlock2(req.message, src));
    const clientT = new ImpairedTransport(await UdpTransport.bind({ host: '127.0.0.1' }), { loss: 0.1, reorder: 0.1, duplicate: 0.02, seed: 12 });
    const client = new CoapEndpoint(clientT, { runtime: systemRuntime, params });
    try {
      const peer = server.address();
      const { data } = await fetchAll((s, o) => client.request(peer, s, o), { runtime: systemRuntime, options: pathOptions('/big'), retry: { attempts: 10, baseMs: 10 } });
      expect(data.length).toBe(big.length);
      expect(sha256(data)).toEqual(sha256(big));
      expect(clientT.stats.dropped).toBeGreaterThan(50);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

