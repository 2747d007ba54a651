/**
 * downloadToSink: the order in which a sink is driven, resume from what a
 * sink kept, a restart when the ETag changed, and nothing at all done to
 * the sink before the server has answered.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadToSink, type DownloadSink, type ResumePoint, type ResumeState } from '../../src/blockwise/download.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { bufferSource, type ByteSource } from '../../src/blockwise/source.js';
import { Code } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { downloadToFile } from '../../src/client/file-sink.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork, flush } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const image = Uint8Array.from({ length: 8000 }, (_, i) => (i * 31) & 0xff); // 8 blocks of 1024, the last one short
const other = Uint8Array.from(image, (b) => b ^ 0x55);

/** A sink in memory that records every call. */
class RecordingSink implements DownloadSink {
  calls: string[] = [];
  data = new Uint8Array(0);
  saved: ResumeState | undefined;
  constructor(private readonly prior?: ResumePoint) {}
  async resumable(): Promise<ResumePoint | undefined> {
    this.calls.push('resumable');
    return this.prior;
  }
  async begin(offset: number): Promise<void> {
    this.calls.push(`begin ${offset}`);
    this.data = this.data.slice(0, offset);
  }
  async save(state: ResumeState): Promise<void> {
    this.calls.push(`save ${state.key} szx ${state.szx}`);
    this.saved = state;
  }
  async write(chunk: Uint8Array, offset: number): Promise<void> {
    this.calls.push(`write ${offset}`);
    const next = new Uint8Array(Math.max(this.data.length, offset + chunk.length));
    next.set(this.data);
    next.set(chunk, offset);
    this.data = next;
  }
  async finish(): Promise<void> {
    this.calls.push('finish');
  }
  async abort(): Promise<void> {
    this.calls.push('abort');
  }
}

function target(source: () => ByteSource | undefined) {
  const net = new MemNetwork();
  const rt = new FakeRuntime(5, 0);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  let served = 0;
  server.handle((req) => {
    const s = source();
    if (s === undefined) return { code: Code.NOT_FOUND };
    served++;
    return serveBlock2(req.message, s);
  });
  const endpoint = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
  return {
    net,
    rt,
    served: () => served,
    t: { request: endpoint.request.bind(endpoint, SERVER), runtime: rt, options: pathOptions('/img') },
  };
}

const src = bufferSource(image);

describe('downloadToSink', () => {
  it('drives the sink in order: begin, save, write per block, finish', async () => {
    const { t } = target(() => src);
    const sink = new RecordingSink();
    const r = await downloadToSink(t, sink, 'coap://x/img');
    expect(sink.calls).toEqual(['begin 0', 'save coap://x/img szx 6', ...Array.from({ length: 8 }, (_, i) => `write ${i * 1024}`), 'finish']);
    expect(sink.data).toEqual(image);
    expect(sink.saved?.etag).toEqual(src.etag);
    expect(r).toMatchObject({ bytes: 8000, resumedFrom: 0, blocks: 8, restarted: false });
  });

  it('resumes from what the sink kept, fetching its last block again', async () => {
    const { t, served } = target(() => src);
    const sink = new RecordingSink({ state: { key: 'k', etag: src.etag, szx: 6 }, length: 3000 });
    sink.data = image.slice(0, 3000);
    const r = await downloadToSink(t, sink, 'k', { resume: true });
    expect(sink.calls.slice(0, 3)).toEqual(['resumable', 'begin 2048', 'write 2048']);
    expect(served()).toBe(6);
    expect(sink.data).toEqual(image);
    expect(r).toMatchObject({ resumedFrom: 2048, blocks: 6, restarted: false });
  });

  it('starts over when the ETag changed, and never stitches two versions', async () => {
    const { t } = target(() => bufferSource(other));
    const sink = new RecordingSink({ state: { key: 'k', etag: src.etag, szx: 6 }, length: 3000 });
    const r = await downloadToSink(t, sink, 'k', { resume: true });
    expect(sink.calls.slice(0, 3)).toEqual(['resumable', 'begin 0', 'save k szx 6']);
    expect(sink.data).toEqual(other);
    expect(r).toMatchObject({ resumedFrom: 0, restarted: true });
  });

  it('does not continue a state saved for another key, or one no server could have sent', async () => {
    for (const state of [
      { key: 'other', etag: src.etag, szx: 6 },
      { key: 'k', etag: src.etag, szx: 9 },
      { key: 'k', etag: new Uint8Array(9), szx: 6 },
    ]) {
      const { t } = target(() => src);
      const sink = new RecordingSink({ state, length: 3000 });
      expect((await downloadToSink(t, sink, 'k', { resume: true })).resumedFrom).toBe(0);
      expect(sink.calls[1]).toBe('begin 0');
    }
  });

  it('aborts the sink when the transfer fails after it began, and finishes nothing', async () => {
    let n = 0;
    const { t } = target(() => (n++ < 3 ? src : undefined));
    const sink = new RecordingSink();
    await expect(downloadToSink(t, sink, 'k')).rejects.toMatchObject({ code: 'RESPONSE_CODE' });
    expect(sink.calls.at(-1)).toBe('abort');
    expect(sink.calls).not.toContain('finish');
  });

  it('touches the sink not at all when the server never answers', async () => {
    const { t, net, rt } = target(() => src);
    net.filter = () => false;
    const sink = new RecordingSink();
    const p = downloadToSink(t, sink, 'k', { retry: { attempts: 2, baseMs: 10 } });
    const settled = p.then(() => 'resolved', (e: { code?: string }) => e.code);
    for (let i = 0; i < 40; i++) {
      rt.advance(30_000);
      await flush();
    }
    expect(await settled).toBe('TIMEOUT');
    expect(sink.calls).toEqual([]);
  });
});

describe('downloadToFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coapfw-sink-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves no empty FILE.part behind when the server answers nothing, or 4.04', async () => {
    for (const [name, source] of [['silent.bin', () => src], ['missing.bin', () => undefined]] as const) {
      const { t, net, rt } = target(source);
      if (name === 'silent.bin') net.filter = () => false;
      const out = join(dir, name);
      const settled = downloadToFile(t, 'u', out, { retry: { attempts: 1 } }).then(() => 'resolved', (e: { code?: string }) => e.code);
      for (let i = 0; i < 10; i++) {
        rt.advance(60_000);
        await flush();
      }
      expect(await settled).toBe(name === 'silent.bin' ? 'TIMEOUT' : 'RESPONSE_CODE');
      expect(existsSync(`${out}.part`), `${name}.part`).toBe(false);
      expect(existsSync(out)).toBe(false);
    }
  });
});
