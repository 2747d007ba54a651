/**
 * Our client (node-dtls-client + retry) and our server through a UDP proxy that
 * loses 10 % of the datagrams in each direction (the shared ImpairedTransport),
 * during the handshake and the transfer. The transfer is made reliable by
 * resending requests, as CoAP's message layer would.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connectDtls } from '../../src/transport/dtls/client.js';
import { IDENTITY, KEY, UdpProxy, echoServer, request } from './helpers.js';

const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c.close();
});

describe('DTLS over a lossy link (10 % loss both ways)', () => {
  it.each([1, 2, 3])('handshake and 40 round trips complete (seed %i)', async (seed) => {
    const server = await echoServer({ retransmitMs: 100 });
    cleanup.push(server);
    const proxy = await UdpProxy.start(server.address().port, { toServer: { loss: 0.1, seed }, toClient: { loss: 0.1, seed: seed + 100 } });
    cleanup.push(proxy);
    const client = await connectDtls({
      host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY,
      retries: 12, handshakeTimeoutMs: 400, backoffMs: 20, maxBackoffMs: 200,
    });
    cleanup.push(client);
    for (let i = 0; i < 40; i++) {
      expect(await request(client, client.remote, `msg ${i}`, 60, 10_000)).toBe(`echo:msg ${i}`);
    }
    expect(server.stats.handshakesOk).toBeGreaterThanOrEqual(1);
    // The loss really happened: 40 exchanges of 2+ datagrams at 10 % lose some.
    expect(proxy.dropped).toBeGreaterThan(4);
  });

  it('survives 30 % loss of handshake datagrams (retries and retransmissions)', async () => {
    const server = await echoServer({ retransmitMs: 100 });
    cleanup.push(server);
    const handshakeOnly = (d: Uint8Array): boolean => d[0] === 22 || d[0] === 20; // handshake, change_cipher_spec
    const proxy = await UdpProxy.start(server.address().port, {
      toServer: { loss: 0.3, seed: 11, filter: handshakeOnly },
      toClient: { loss: 0.3, seed: 12, filter: handshakeOnly },
    });
    cleanup.push(proxy);
    const client = await connectDtls({
      host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY,
      retries: 20, handshakeTimeoutMs: 400, backoffMs: 20, maxBackoffMs: 200,
    });
    cleanup.push(client);
    expect(await request(client, client.remote, 'through', 60, 10_000)).toBe('echo:through');
    expect(proxy.dropped).toBeGreaterThan(0);
  });
});
