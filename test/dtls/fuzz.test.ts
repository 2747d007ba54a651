/**
 * Fuzzing the server with mutations of a real client's datagrams, injected
 * from the client's own address: nothing may throw, no extra session may
 * appear, and the real session must survive (RFC 6347 §4.1.2.7: invalid records
 * are discarded, not fatal).
 */
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { connectDtls } from '../../src/transport/dtls/client.js';
import type { DatagramHandler, Peer, Transport } from '../../src/core/transport.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { IDENTITY, KEY, echoServer, request } from './helpers.js';

/** Records what the server receives and lets the test inject more. */
class Recorder implements Transport {
  readonly received: Array<{ data: Uint8Array; peer: Peer }> = [];
  private handler: DatagramHandler = () => {};
  constructor(private readonly inner: Transport) {
    inner.onMessage((d, p) => {
      this.received.push({ data: Uint8Array.from(d), peer: p });
      this.handler(d, p);
    });
  }
  inject(d: Uint8Array, p: Peer): void {
    this.handler(d, p);
  }
  send(d: Uint8Array, p: Peer): Promise<void> {
    return this.inner.send(d, p);
  }
  onMessage(h: DatagramHandler): void {
    this.handler = h;
  }
  address(): Peer {
    return this.inner.address();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c.close();
});

describe('DTLS server fuzzing', () => {
  it('mutated, truncated and replayed client datagrams never break the session', async () => {
    const rec = new Recorder(await UdpTransport.bind());
    const server = await echoServer({ transport: rec });
    cleanup.push(server);
    const client = await connectDtls({ host: '127.0.0.1', port: server.address().port, identity: IDENTITY, key: KEY });
    cleanup.push(client);
    expect(await request(client, client.remote, 'warm-up')).toBe('echo:warm-up');
    const samples = rec.received.slice();
    const peer = samples[0]!.peer;
    expect(samples.length).toBeGreaterThanOrEqual(4); // hello, hello+cookie, key exchange+finished, data

    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: samples.length - 1 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
        fc.nat(),
        fc.boolean(),
        (which, flips, cut, truncate) => {
          const d = Uint8Array.from(samples[which]!.data);
          for (const [pos, x] of flips) d[pos % d.length]! ^= x;
          rec.inject(truncate ? d.subarray(0, cut % (d.length + 1)) : d, peer);
        },
      ),
      { numRuns: 2000, seed: 42 },
    );
    expect(server.stats.internalErrors).toBe(0);
    expect(server.sessionCount).toBe(1);
    expect(server.stats.handshakesStarted).toBe(1);
    expect(await request(client, client.remote, 'still fine')).toBe('echo:still fine');
  });
});
