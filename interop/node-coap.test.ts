/**
 * Interop: node-coap's Agent (coap 1.5) fetching from `coapfw serve`. The
 * Agent follows Block2 itself (RFC 7959 §2.4, same token for every block)
 * and hands back the reassembled representation, which must hash right.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../src/server/serve.js';
import { fixtureName, makeFixtureDir, nodeCoapGet, sha256Hex } from './helpers.js';

const SIZES = [0, 1, 1024, 1025, 100_000];

describe('node-coap Agent fetches from coapfw serve', () => {
  let fixtures: Awaited<ReturnType<typeof makeFixtureDir>>;
  let server: FileServer;
  let port: number;

  beforeAll(async () => {
    fixtures = await makeFixtureDir(SIZES, 'coapfw-node-coap-');
    server = await startFileServer({ dir: fixtures.dir, host: '::', port: 0, refreshMs: 0 });
    port = server.address().port;
  });

  afterAll(async () => {
    await server?.close();
    await fixtures?.remove();
  });

  for (const size of SIZES) {
    it(`${size} bytes, with the right SHA-256`, async () => {
      const r = await nodeCoapGet('127.0.0.1', port, `/files/${fixtureName(size)}`);
      expect(r.code).toBe('2.05');
      expect(r.payload.length).toBe(size);
      expect(sha256Hex(r.payload)).toBe(fixtures.hashes.get(size));
    });
  }

  it('at 64-byte blocks asked by early negotiation (Block2 SZX 2 on the first request)', async () => {
    const before = server.endpoint.stats.received;
    const r = await nodeCoapGet('127.0.0.1', port, `/files/${fixtureName(1025)}`, { block2: Buffer.of(0x02) });
    expect(r.code).toBe('2.05');
    expect(sha256Hex(r.payload)).toBe(fixtures.hashes.get(1025));
    expect(server.endpoint.stats.received - before).toBe(Math.ceil(1025 / 64));
  });

  it('by content address /fw/sha256/<hex>, over IPv6', async () => {
    const hex = fixtures.hashes.get(100_000)!;
    const r = await nodeCoapGet('::1', port, `/fw/sha256/${hex}`);
    expect(r.code).toBe('2.05');
    expect(sha256Hex(r.payload)).toBe(hex);
  });

  it('gets 4.04 for a missing file', async () => {
    const r = await nodeCoapGet('127.0.0.1', port, '/files/absent.bin');
    expect(r.code).toBe('4.04');
  });
});
