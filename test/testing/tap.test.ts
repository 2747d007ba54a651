/** tapTransport (coapfw/testing): sees every datagram in and out, drops what `received` refuses, keeps `post`. */
import { describe, expect, it } from 'vitest';
import type { Peer, Transport } from '../../src/core/transport.js';
import { flush, MemNetwork } from '../../src/testing/mem-transport.js';
import { tapTransport } from '../../src/testing/tap.js';

const bytes = (...b: number[]): Uint8Array => Uint8Array.from(b);

describe('tapTransport', () => {
  it('tells of datagrams received and sent, and delivers what it does not drop', async () => {
    const net = new MemNetwork();
    const a = net.endpoint('10.0.0.1', 1000);
    const inner = net.endpoint('10.0.0.2', 2000);
    const seenIn: number[] = [];
    const seenOut: number[] = [];
    const t = tapTransport(inner, { received: (d) => (seenIn.push(d[0]!), d[0] !== 2), sent: (d) => void seenOut.push(d[0]!) });
    const delivered: number[] = [];
    t.onMessage((d) => void delivered.push(d[0]!));
    const got: number[] = [];
    a.onMessage((d) => void got.push(d[0]!));
    for (const n of [1, 2, 3]) await a.send(bytes(n), t.address());
    await t.send(bytes(7), a.address());
    await flush();
    expect(seenIn).toEqual([1, 2, 3]);
    expect(delivered).toEqual([1, 3]);
    expect(seenOut).toEqual([7]);
    expect(got).toEqual([7]);
    expect(t.address()).toEqual(inner.address());
  });

  it('keeps the post fast path when the inner transport has one, and tells of it too', () => {
    const posted: number[] = [];
    const inner: Transport = {
      send: async () => {},
      post: (d: Uint8Array, _p: Peer) => void posted.push(d[0]!),
      onMessage: () => {},
      address: () => ({ address: '127.0.0.1', port: 1 }),
      close: async () => {},
    };
    const out: number[] = [];
    const t = tapTransport(inner, { sent: (d) => void out.push(d[0]!) });
    t.post!(bytes(9), { address: '127.0.0.1', port: 2 });
    expect(posted).toEqual([9]);
    expect(out).toEqual([9]);
    expect(tapTransport({ ...inner, post: undefined }, {}).post).toBeUndefined();
  });
});
