/**
 * Interop of the gateway with libcoap 4.3: its client through our gateway as
 * a forward proxy (`coap-client-notls -P coap://gateway ...`, which sends
 * Proxy-Uri and RFC 8768 Hop-Limit on every block request), and our gateway in
 * front of libcoap's `coap-server-notls -d` (resources created by PUT),
 * mirrored and cached. Correctness is the SHA-256 of what arrived.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchAll } from '../src/blockwise/fetch.js';
import { openClient } from '../src/client/open.js';
import { pathOptions } from '../src/codec/options.js';
import { startGateway, type Gateway } from '../src/gateway/gateway.js';
import { startFileServer, type FileServer } from '../src/server/serve.js';
import { systemRuntime } from '../src/transport/runtime.js';
import { blockwiseWaitSeconds, COAP_CLIENT, describeWithBinaries, fixtureBytes, killAll, libcoapMissing, putToLibcoap, run, sha256File, sha256Hex, startLibcoapServer } from './helpers.js';

const SIZE = 50_000;

describeWithBinaries('gateway and libcoap', libcoapMissing(), () => {
  let dir: string;
  const data = fixtureBytes(SIZE, 31);
  const hex = sha256Hex(data);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coapfw-interop-gw-'));
    await writeFile(join(dir, 'fw.bin'), data);
  });

  afterAll(async () => {
    killAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('coap-client -P through our gateway', () => {
    let upstream: FileServer;
    let gw: Gateway;
    let proxy: string;
    let origin: string;

    beforeAll(async () => {
      upstream = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
      origin = `coap://127.0.0.1:${upstream.address().port}`;
      gw = await startGateway({ upstream: origin, cacheDir: join(dir, 'gw-a'), host: '127.0.0.1', port: 0 });
      proxy = `coap://127.0.0.1:${gw.address().port}`;
    });

    afterAll(async () => {
      await gw?.close();
      await upstream?.close();
    });

    it('fetches a file by name through the gateway (Proxy-Uri, every block)', async () => {
      const out = join(dir, 'by-name.out');
      const r = await run(COAP_CLIENT, ['-m', 'get', '-b', '1024', '-B', String(blockwiseWaitSeconds(SIZE, 1024)), '-P', proxy, `${origin}/files/fw.bin`, '-o', out], 120_000);
      expect(r.code, r.stderr).toBe(0);
      expect(await sha256File(out)).toBe(hex);
      expect(gw.stats().validated.fetched).toBe(1); // fetched upstream once, every block served from the gateway
    });

    it('fetches an image by content address from the gateway cache', async () => {
      // Warm the cache first: libcoap's client does not wait out a 5.03 for a block still on its way.
      const c = await openClient(`${proxy}/`);
      try {
        await fetchAll(c.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${hex}`), retry: { attempts: 20 } });
      } finally {
        await c.close();
      }
      const out = join(dir, 'by-hash.out');
      const r = await run(COAP_CLIENT, ['-m', 'get', '-b', '512', '-B', String(blockwiseWaitSeconds(SIZE, 512)), '-P', proxy, `${origin}/fw/sha256/${hex}`, '-o', out], 120_000);
      expect(r.code, r.stderr).toBe(0);
      expect(await sha256File(out)).toBe(hex);
      expect(gw.stats().cache.fills).toBe(1);
      expect(gw.stats().cache.hits).toBeGreaterThanOrEqual(Math.ceil(SIZE / 512));
    });

    it('refuses to proxy elsewhere: 5.05', async () => {
      const r = await run(COAP_CLIENT, ['-m', 'get', '-B', '5', '-P', proxy, 'coap://192.0.2.1/x'], 15_000);
      expect(r.stdout + r.stderr).toMatch(/5\.05/);
    });
  });

  describe('our gateway in front of coap-server-notls -d', () => {
    let server: Awaited<ReturnType<typeof startLibcoapServer>>;
    let gw: Gateway;
    let base: string;

    beforeAll(async () => {
      server = await startLibcoapServer();
      for (const path of ['fw.bin', `fw/sha256/${hex}`]) {
        const put = await putToLibcoap(server.uri(path), join(dir, 'fw.bin'));
        if (put.code !== 0) throw new Error(`PUT ${path} to coap-server-notls failed: ${put.stderr}`);
      }
      gw = await startGateway({ upstream: server.uri('').replace(/\/$/, ''), cacheDir: join(dir, 'gw-b'), host: '127.0.0.1', port: 0 });
      base = `coap://127.0.0.1:${gw.address().port}`;
    });

    afterAll(async () => {
      await gw?.close();
      await server?.stop();
    });

    it('mirrors a resource of libcoap by name: our client and libcoap client both get the right bytes', async () => {
      const c = await openClient(`${base}/`);
      try {
        const r = await fetchAll(c.request, { runtime: systemRuntime, options: pathOptions('/fw.bin') });
        expect(sha256Hex(r.data)).toBe(hex);
      } finally {
        await c.close();
      }
      const out = join(dir, 'mirror.out');
      const r = await run(COAP_CLIENT, ['-m', 'get', '-b', '1024', '-B', String(blockwiseWaitSeconds(SIZE, 1024)), `${base}/fw.bin`, '-o', out], 120_000);
      expect(r.code, r.stderr).toBe(0);
      expect(await sha256File(out)).toBe(hex);
    });

    it('caches an image libcoap holds under its content address, verified, each block fetched once', async () => {
      const c = await openClient(`${base}/`);
      try {
        const a = await fetchAll(c.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${hex}`), retry: { attempts: 20 } });
        const b = await fetchAll(c.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${hex}`) });
        expect(sha256Hex(a.data)).toBe(hex);
        expect(sha256Hex(b.data)).toBe(hex);
      } finally {
        await c.close();
      }
      expect(gw.stats().cache.completed).toBe(1);
      expect(gw.stats().cache.upstreamBytes).toBe(SIZE);
    });
  });
});
