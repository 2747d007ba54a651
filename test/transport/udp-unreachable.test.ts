/**
 * A client socket connected to its one server (connect(2)) hears the ICMP
 * errors its sends draw: openClient with `unreachable: 'fail'` fails a request
 * at once with UNREACHABLE; the default keeps today's behaviour (the request
 * times out and the caller's retry policy decides). Datagrams from any other
 * address are dropped by the kernel.
 */
import { describe, expect, it } from 'vitest';
import { encodeMessage } from '../../src/codec/message.js';
import { Code, MessageType } from '../../src/codec/numbers.js';
import { isCoapfwError } from '../../src/errors.js';
import { openClient } from '../../src/client/open.js';
import { UdpTransport } from '../../src/transport/udp.js';

async function closedPort(): Promise<number> {
  const t = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  const port = t.address().port;
  await t.close();
  return port;
}

describe('connected client sockets', () => {
  it("unreachable: 'fail' rejects with UNREACHABLE naming the peer, within a second", async () => {
    const port = await closedPort();
    const client = await openClient(`coap://127.0.0.1:${port}/x`, { unreachable: 'fail' });
    try {
      const started = performance.now();
      const e = await client.request({ code: Code.GET, options: client.options }).catch((x: unknown) => x);
      expect(isCoapfwError(e, 'UNREACHABLE')).toBe(true);
      expect((e as Error).message).toBe(`nothing listens on 127.0.0.1:${port} (ICMP port unreachable)`);
      expect(isCoapfwError(e) && e.peer).toEqual({ address: '127.0.0.1', port });
      expect(performance.now() - started).toBeLessThan(1000);
    } finally {
      await client.close();
    }
  });

  it('by default the ICMP error is ignored: the request waits (here: until its response timeout)', async () => {
    const client = await openClient(`coap://127.0.0.1:${await closedPort()}/x`);
    try {
      const e = await client.request({ code: Code.GET, options: client.options, confirmable: false }, { responseTimeoutMs: 300 }).catch((x: unknown) => x);
      expect(isCoapfwError(e, 'TIMEOUT')).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('an abort by the caller stays ABORTED, not UNREACHABLE', async () => {
    const server = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    const client = await openClient(`coap://127.0.0.1:${server.address().port}/x`, { unreachable: 'fail' });
    try {
      const ac = new AbortController();
      const p = client.request({ code: Code.GET, options: client.options }, { signal: ac.signal });
      ac.abort(new Error('user'));
      expect(isCoapfwError(await p.catch((x: unknown) => x), 'ABORTED')).toBe(true);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('answers only from the connected server reach the client', async () => {
    const server = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    const stranger = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    const client = await UdpTransport.bind({ host: '127.0.0.1', port: 0, connect: server.address() });
    const got: number[] = [];
    client.onMessage((_d, peer) => got.push(peer.port));
    try {
      const ping = encodeMessage({ type: MessageType.NON, code: Code.EMPTY, messageId: 1, token: new Uint8Array(0), options: [], payload: new Uint8Array(0) });
      await stranger.send(ping, client.address());
      await server.send(ping, client.address());
      await new Promise((r) => setTimeout(r, 100));
      expect(got).toEqual([server.address().port]);
      await expect(client.send(ping, stranger.address())).rejects.toThrow(/the socket is connected to 127\.0\.0\.1:\d+/);
    } finally {
      await Promise.all([client.close(), server.close(), stranger.close()]);
    }
  });

  it('a port in use is ADDRESS_IN_USE with the port named', async () => {
    const a = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    try {
      const e = await UdpTransport.bind({ host: '127.0.0.1', port: a.address().port }).catch((x: unknown) => x);
      expect(isCoapfwError(e, 'ADDRESS_IN_USE')).toBe(true);
      expect((e as Error).message).toBe(`udp: port ${a.address().port} is in use (binding 127.0.0.1:${a.address().port})`);
    } finally {
      await a.close();
    }
  });
});
