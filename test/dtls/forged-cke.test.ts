/**
 * Blind injection of epoch-0 handshake records (review finding): a forged
 * ClientKeyExchange, spoofed from the client's address with the predictable
 * message_seq, must not commit or abort the genuine handshake. Malformed ones
 * are dropped silently, the others become candidates (an unknown identity with
 * keys from a random PSK, RFC 4279 §2), and the client's epoch-1 Finished
 * selects its own. A genuine
 * wrong key still fails promptly. Also: a handshake evicted before it finished
 * does not make the client's retransmitted ClientHello "stale".
 */
import { describe, expect, it } from 'vitest';
import { connectDtls } from '../../src/transport/dtls/client.js';
import { HandshakeType, TLS_PSK_WITH_AES_128_CCM_8, fullMessage } from '../../src/transport/dtls/messages.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { ContentType, encodeRecord, parseRecords } from '../../src/transport/dtls/record.js';
import { createDtlsServer, type DtlsServerEvent } from '../../src/transport/dtls/server.js';
import type { DatagramHandler, Peer, Transport } from '../../src/core/transport.js';
import { IDENTITY, KEY, OTHER_IDENTITY, UdpProxy, echoServer, request, until, closeAfterEach } from './helpers.js';

const track = closeAfterEach();

/** An epoch-0 ClientKeyExchange record; the cookie-bearing ClientHello has message_seq 1, so this is 2. */
function cke(body: Uint8Array, seq = 12345): Uint8Array {
  return encodeRecord(ContentType.handshake, 0, seq, fullMessage(HandshakeType.clientKeyExchange, 2, body));
}
function identityBody(identity: string): Uint8Array {
  const id = Buffer.from(identity);
  return Uint8Array.from(Buffer.concat([Buffer.from([id.length >> 8, id.length & 255]), id]));
}
const ccs = encodeRecord(ContentType.changeCipherSpec, 0, 12400, Uint8Array.of(1));
const junkFinished = encodeRecord(ContentType.handshake, 1, 0, new Uint8Array(40).fill(0x5a));

/** Injects `datagrams` (spoofed from the client's address) when the server's flight 4 leaves. */
function injectOnFlight4(proxy: UdpProxy, datagrams: Uint8Array[], loseIt = false): { count: () => number } {
  let done = 0;
  proxy.serverHook = (d) => {
    if (done === 0 && parseRecords(d).some((r) => r.type === ContentType.handshake && r.fragment[0] === HandshakeType.serverHello)) {
      done = 1;
      void (async () => {
        for (const x of datagrams) await proxy.inject(x);
      })();
      if (loseIt) return 'drop';
    }
    return 'forward';
  };
  return { count: () => done };
}

describe('forged ClientKeyExchange injection', () => {
  const cases: Array<[string, Uint8Array[]]> = [
    ['an unknown identity', [cke(identityBody('no-such-identity'))]],
    ['another valid identity', [cke(identityBody(OTHER_IDENTITY))]],
    ['a malformed body', [cke(Uint8Array.of(0, 9, 1))]],
    ['the genuine identity (same bytes)', [cke(identityBody(IDENTITY))]],
    [
      'several, with a forged ChangeCipherSpec and a junk Finished in separate datagrams',
      [cke(identityBody('no-such-identity')), cke(identityBody(OTHER_IDENTITY), 12346), ccs, junkFinished],
    ],
  ];
  for (const [what, forged] of cases) {
    it(`a forged ClientKeyExchange with ${what} does not prevent the genuine handshake`, async () => {
      const events: DtlsServerEvent[] = [];
      const server = track(await echoServer({ onEvent: (e) => events.push(e) }));
      const proxy = track(await UdpProxy.start(server.address().port));
      const inj = injectOnFlight4(proxy, forged);
      const client = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 3000 }));
      expect(inj.count()).toBe(1);
      expect(await request(client, client.remote, 'genuine')).toBe('echo:genuine');
      expect(events.filter((e) => e.type === 'handshake-failed')).toEqual([]);
      expect(events.find((e) => e.type === 'established')).toMatchObject({ identity: IDENTITY });
      expect(server.stats.handshakesOk).toBe(1);
    });
  }

  it('a forged ClientKeyExchange and ChangeCipherSpec do not stop the retransmission of a lost flight 4', async () => {
    const server = track(await echoServer({ retransmitMs: 100 }));
    const proxy = track(await UdpProxy.start(server.address().port));
    injectOnFlight4(proxy, [cke(identityBody(OTHER_IDENTITY)), ccs], true);
    const client = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 3000 }));
    expect(await request(client, client.remote, 'after loss')).toBe('echo:after loss');
    expect(server.stats.handshakesStarted).toBe(1);
  });

  it('a genuine wrong key still fails promptly after a forged ClientKeyExchange of another identity', async () => {
    const failed: string[] = [];
    const server = track(await echoServer({ onEvent: (e) => void (e.type === 'handshake-failed' && failed.push(e.reason)) }));
    const proxy = track(await UdpProxy.start(server.address().port));
    injectOnFlight4(proxy, [cke(identityBody(OTHER_IDENTITY))]);
    const wrong = Uint8Array.from(KEY.map((b) => b ^ 1)); // neither identity's key
    const err = await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: wrong, retries: 0, handshakeTimeoutMs: 5000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DTLS_HANDSHAKE_FAILED', message: expect.stringMatching(/wrong PSK/) });
    await until(() => failed.length === 1);
    // The fatal verdict names the identity of the ClientKeyExchange in the client's own datagram.
    expect(failed[0]).toBe('client Finished did not authenticate (wrong PSK for identity "dev-0001"?)');
  });

  it('an unknown identity fails at once like a wrong key, with the reason in the server event', async () => {
    const failed: string[] = [];
    const server = track(await echoServer({ onEvent: (e) => void (e.type === 'handshake-failed' && failed.push(e.reason)) }));
    await expect(connectDtls({ host: '127.0.0.1', port: server.address().port, identity: 'nobody', key: KEY, retries: 0, handshakeTimeoutMs: 5000 })).rejects.toMatchObject({
      code: 'DTLS_HANDSHAKE_FAILED',
      message: expect.stringMatching(/bad_record_mac/),
    });
    await until(() => failed.length >= 1);
    expect(failed[0]).toBe('client Finished did not authenticate (unknown PSK identity "nobody")');
    expect(server.sessionCount).toBe(0);
  });
});

/** An in-memory transport: the test injects datagrams from any address and keeps the replies. */
class Memory implements Transport {
  handler: DatagramHandler = () => {};
  readonly sent: Array<{ d: Uint8Array; to: string }> = [];
  inject(d: Uint8Array, peer: Peer): void {
    this.handler(d, peer);
  }
  send(d: Uint8Array, peer: Peer): Promise<void> {
    this.sent.push({ d, to: `${peer.address}:${peer.port}` });
    return Promise.resolve();
  }
  onMessage(h: DatagramHandler): void {
    this.handler = h;
  }
  address(): Peer {
    return { address: '127.0.0.1', port: 1 };
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
  /** How many ServerHello flights went to `peer`. */
  serverHellos(peer: Peer): number {
    return this.sent.filter((x) => x.to === `${peer.address}:${peer.port}` && parseRecords(x.d).some((r) => r.type === ContentType.handshake && r.fragment[0] === HandshakeType.serverHello)).length;
  }
}

function clientHello(random: Uint8Array, cookie: Uint8Array, seq: number): Uint8Array {
  const body = Buffer.concat([
    Buffer.from([0xfe, 0xfd]), random, Buffer.from([0, cookie.length]), cookie,
    Buffer.from([0, 2, TLS_PSK_WITH_AES_128_CCM_8 >> 8, TLS_PSK_WITH_AES_128_CCM_8 & 0xff, 1, 0]),
  ]);
  return encodeRecord(ContentType.handshake, 0, seq, fullMessage(HandshakeType.clientHello, seq, body));
}

/** Does the cookie exchange from `peer`; returns the cookie-bearing ClientHello (already sent once). */
function openHandshake(mem: Memory, peer: Peer, fill: number): Uint8Array {
  const random = new Uint8Array(32).fill(fill);
  mem.inject(clientHello(random, new Uint8Array(0), 0), peer);
  const hvr = parseRecords(mem.sent.at(-1)!.d)[0]!;
  expect(hvr.fragment[0]).toBe(HandshakeType.helloVerifyRequest);
  const body = hvr.fragment.subarray(12);
  const hello = clientHello(random, body.subarray(3, 3 + body[2]!), 1);
  mem.inject(hello, peer);
  return hello;
}

describe('recent hellos after an unfinished handshake ends', () => {
  const victim = { address: '192.0.2.1', port: 5000 };
  const neighbour = { address: '192.0.2.1', port: 5001 };

  it('a handshake evicted by the per-address cap is restarted by the client\'s retransmitted ClientHello', async () => {
    const mem = new Memory();
    const server = track(await createDtlsServer({ transport: mem, psk: PskStore.fromEntries([[IDENTITY, KEY]]), maxHandshakesPerAddress: 1 }));
    const hello = openHandshake(mem, victim, 1);
    expect(mem.serverHellos(victim)).toBe(1);
    openHandshake(mem, neighbour, 2); // evicts the victim's handshake
    expect(server.stats.handshakesEvictedPerAddress).toBe(1);
    mem.inject(hello, victim); // the victim's retransmission (same random, cookie still valid)
    expect(server.stats.staleHellosDropped).toBe(0);
    expect(server.stats.handshakesStarted).toBe(3);
    expect(mem.serverHellos(victim)).toBe(2);
  });

  it('a handshake that timed out is restarted by the same ClientHello; an open one only retransmits', async () => {
    const mem = new Memory();
    const server = track(await createDtlsServer({ transport: mem, psk: PskStore.fromEntries([[IDENTITY, KEY]]), handshakeTimeoutMs: 100 }));
    const hello = openHandshake(mem, victim, 3);
    mem.inject(hello, victim); // still open: flight 4 again, no new handshake
    expect(server.stats.handshakesStarted).toBe(1);
    expect(mem.serverHellos(victim)).toBe(2);
    await until(() => server.sessionCount === 0);
    mem.inject(hello, victim);
    expect(server.stats.staleHellosDropped).toBe(0);
    expect(server.stats.handshakesStarted).toBe(2);
    expect(mem.serverHellos(victim)).toBe(3);
  });
});
