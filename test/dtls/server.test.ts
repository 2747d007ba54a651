import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { connectDtls, type DtlsClientTransport } from '../../src/transport/dtls/client.js';
import { HandshakeType, TLS_PSK_WITH_AES_128_CCM_8, fullMessage } from '../../src/transport/dtls/messages.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { ContentType, encodeRecord, parseRecords } from '../../src/transport/dtls/record.js';
import { createDtlsServer, type DtlsServerEvent } from '../../src/transport/dtls/server.js';
import type { DatagramHandler, Peer, Transport } from '../../src/core/transport.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { IDENTITY, KEY, OTHER_IDENTITY, OTHER_KEY, UdpProxy, echoServer, request, until, closeAfterEach } from './helpers.js';

const track = closeAfterEach();

async function connect(port: number, extra: Partial<Parameters<typeof connectDtls>[0]> = {}): Promise<DtlsClientTransport> {
  return track(await connectDtls({ host: '127.0.0.1', port, identity: IDENTITY, key: KEY, ...extra }));
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isCoapfwError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a rejection');
}

/** A ClientHello record offering CCM_8 (RFC 5246 §7.4.1.2 layout). */
function clientHello(random: Uint8Array, cookie: Uint8Array, recordSeq = 0): Uint8Array {
  const suites = [TLS_PSK_WITH_AES_128_CCM_8, 0x00ff];
  const body = Buffer.concat([
    Buffer.from([0xfe, 0xfd]), random, Buffer.from([0]), Buffer.from([cookie.length]), cookie,
    Buffer.from([0, suites.length * 2, ...suites.flatMap((s) => [s >> 8, s & 0xff])]), Buffer.from([1, 0]),
  ]);
  return encodeRecord(ContentType.handshake, 0, recordSeq, fullMessage(HandshakeType.clientHello, 0, body));
}

/** Wraps a UDP transport so tests can inject datagrams from any (spoofed) address. */
class Tap implements Transport {
  handler: DatagramHandler = () => {};
  spoofedReplies = 0;
  constructor(private readonly inner: Transport) {
    inner.onMessage((d, p) => this.handler(d, p));
  }
  inject(d: Uint8Array, peer: Peer): void {
    this.handler(d, peer);
  }
  send(d: Uint8Array, peer: Peer): Promise<void> {
    if (peer.address.startsWith('10.')) {
      this.spoofedReplies++;
      return Promise.resolve(); // never put spoofed traffic on a real network
    }
    return this.inner.send(d, peer);
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

describe('DTLS server with node-dtls-client', () => {
  it('completes a handshake and echoes application data both ways', async () => {
    const server = track(await echoServer());
    const client = await connect(server.address().port);
    expect(await request(client, client.remote, 'hello')).toBe('echo:hello');
    expect(await request(client, client.remote, 'again')).toBe('echo:again');
    expect(server.stats.handshakesOk).toBe(1);
    expect(server.stats.helloVerifyRequests).toBe(1);
    expect(server.sessionCount).toBe(1);
    expect(server.hasSession({ address: '127.0.0.1', port: client.address().port })).toBe(true);
    expect(client.address().port).toBeGreaterThan(0);
  });

  it('serves several clients with different identities at once', async () => {
    const server = track(await echoServer());
    const a = await connect(server.address().port);
    const b = await connect(server.address().port, { identity: OTHER_IDENTITY, key: OTHER_KEY });
    const [ra, rb] = await Promise.all([request(a, a.remote, 'from a'), request(b, b.remote, 'from b')]);
    expect([ra, rb]).toEqual(['echo:from a', 'echo:from b']);
    expect(server.sessionCount).toBe(2);
  });

  it('a wrong key fails at once on both sides with a clear error, and the server keeps serving', async () => {
    const events: DtlsServerEvent[] = [];
    const server = track(await echoServer({ onEvent: (e) => events.push(e) }));
    const port = server.address().port;
    const err = await failure(connectDtls({ host: '127.0.0.1', port, identity: IDENTITY, key: OTHER_KEY, retries: 3 }));
    expect(err.code).toBe('DTLS_HANDSHAKE_FAILED');
    expect(err.message).toMatch(/did not accept the key of identity "dev-0001" \(wrong PSK/);
    // A fatal alert is unauthenticated: the client believes it once a second attempt ends the same way.
    expect(server.stats.handshakesStarted).toBe(2);
    expect(server.stats.handshakesFailed).toBe(2);
    expect(events.find((e) => e.type === 'handshake-failed')).toMatchObject({ reason: expect.stringMatching(/wrong PSK/) });
    expect(server.sessionCount).toBe(0);
    const good = await connect(port);
    expect(await request(good, good.remote, 'still here')).toBe('echo:still here');
  });

  it('sends a psk_identity_hint only when configured, and clients still connect', async () => {
    const server = track(await echoServer({ hint: 'coapfw' }));
    const proxy = track(await UdpProxy.start(server.address().port));
    const client = await connect(proxy.port);
    expect(await request(client, client.remote, 'hint')).toBe('echo:hint');
    const flight4 = proxy.toClient.map((d) => parseRecords(d)).find((rs) => rs.some((r) => r.fragment[0] === HandshakeType.serverHello))!;
    const types = flight4.map((r) => r.fragment[0]);
    expect(types).toEqual([HandshakeType.serverHello, HandshakeType.serverKeyExchange, HandshakeType.serverHelloDone]);
    expect(Buffer.from(flight4[1]!.fragment.subarray(14)).toString()).toBe('coapfw');

    const plain = track(await echoServer());
    const proxy2 = track(await UdpProxy.start(plain.address().port));
    await connect(proxy2.port);
    const flight4b = proxy2.toClient.map((d) => parseRecords(d)).find((rs) => rs.some((r) => r.fragment[0] === HandshakeType.serverHello))!;
    expect(flight4b.map((r) => r.fragment[0])).toEqual([HandshakeType.serverHello, HandshakeType.serverHelloDone]);
  });

  it('refuses a client without TLS_PSK_WITH_AES_128_CCM_8 with a handshake_failure alert', async () => {
    const server = track(await echoServer());
    const err = await failure(
      connectDtls({ host: '127.0.0.1', port: server.address().port, identity: IDENTITY, key: KEY, ciphers: ['TLS_PSK_WITH_AES_128_GCM_SHA256'] }),
    );
    expect(err).toMatchObject({ code: 'DTLS_HANDSHAKE_FAILED', message: expect.stringMatching(/refused our parameters.*handshake_failure/) });
    expect(server.sessionCount).toBe(0);
  });

  it('an unknown identity fails like a wrong key (RFC 4279 §2: identities are not revealed); the server event says which', async () => {
    const failed: string[] = [];
    const server = track(await echoServer({ onEvent: (e) => void (e.type === 'handshake-failed' && failed.push(e.reason)) }));
    const err = await failure(connectDtls({ host: '127.0.0.1', port: server.address().port, identity: 'nobody', key: KEY, retries: 0, handshakeTimeoutMs: 5000 }));
    expect(err).toMatchObject({ code: 'DTLS_HANDSHAKE_FAILED', message: expect.stringMatching(/did not accept the key of identity "nobody".*bad_record_mac/) });
    await until(() => failed.length === 1);
    expect(failed[0]).toBe('client Finished did not authenticate (unknown PSK identity "nobody")');
  });

  it('an unreachable server fails after the bounded retries with a timeout message', async () => {
    const silent = track(await UdpTransport.bind()); // receives and never answers
    let heard = 0;
    silent.onMessage(() => heard++);
    const t0 = Date.now();
    const err = await failure(
      connectDtls({ host: '127.0.0.1', port: silent.address().port, identity: IDENTITY, key: KEY, retries: 2, handshakeTimeoutMs: 150, backoffMs: 20 }),
    );
    expect(err.code).toBe('DTLS_HANDSHAKE_FAILED');
    expect(err.message).toMatch(/no handshake with 127\.0\.0\.1:\d+ after 3 attempts of 150 ms \(server unreachable or not speaking DTLS/);
    expect(heard).toBe(3);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('validates client and server options at the boundary', async () => {
    expect(await failure(connectDtls({ host: '127.0.0.1', port: 0, identity: IDENTITY, key: KEY }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await failure(connectDtls({ host: '127.0.0.1', port: 5684, identity: '', key: KEY }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await failure(connectDtls({ host: '127.0.0.1', port: 5684, identity: 'x', key: new Uint8Array(0) }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await failure(createDtlsServer({ psk: undefined as never }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await failure(createDtlsServer({ psk: PskStore.parse(''), maxSessions: -1 }))).toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('send() to a peer without a session is a typed error', async () => {
    const server = track(await echoServer());
    expect(await failure(server.send(new Uint8Array(1), { address: '127.0.0.1', port: 9 }))).toMatchObject({ code: 'DTLS_NO_SESSION' });
  });

  it('close_notify from the client removes its session', async () => {
    const server = track(await echoServer());
    const client = await connect(server.address().port);
    expect(server.sessionCount).toBe(1);
    await client.close();
    await until(() => server.sessionCount === 0);
    expect(await failure(client.send(new Uint8Array(1), client.remote))).toMatchObject({ code: 'TRANSPORT_CLOSED' });
  });
});

describe('DTLS server record protection', () => {
  it('drops replayed records and corrupted records; a corrupted copy does not block the original', async () => {
    const server = track(await echoServer());
    const proxy = track(await UdpProxy.start(server.address().port));
    const client = await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY });
    track(client);
    const got: string[] = [];
    server.onMessage((d) => got.push(Buffer.from(d).toString()));
    const isAppData = (d: Uint8Array): boolean => parseRecords(d).some((r) => r.type === ContentType.applicationData);

    await client.send(Buffer.from('one'), client.remote);
    await until(() => got.length === 1);
    const captured = proxy.toServer.filter(isAppData).at(-1)!;
    await proxy.inject(captured); // replay
    await proxy.inject(captured);
    await until(() => server.stats.replaysDropped === 2);

    // Hold back the next record, send a corrupted copy first, then the original.
    let held: Uint8Array | undefined;
    proxy.clientHook = (d) => (isAppData(d) && held === undefined ? ((held = Uint8Array.from(d)), 'drop') : 'forward');
    await client.send(Buffer.from('two'), client.remote);
    await until(() => held !== undefined);
    const bad = Uint8Array.from(held!);
    bad[bad.length - 3]! ^= 0x40;
    await proxy.inject(bad);
    await until(() => server.stats.badRecordsDropped === 1);
    await proxy.inject(held!);
    await until(() => got.length === 2);
    expect(got).toEqual(['one', 'two']);
    expect(server.sessionCount).toBe(1);
  });
});

describe('DTLS server under attack', () => {
  it('garbage datagrams create no state and the server keeps answering', async () => {
    const server = track(await echoServer());
    const port = server.address().port;
    const sock = createSocket('udp4');
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
    const junk: Uint8Array[] = [];
    for (let i = 0; i < 300; i++) junk.push(Uint8Array.from({ length: 1 + (rnd() % 200) }, rnd));
    junk.push(encodeRecord(ContentType.handshake, 0, 0, Uint8Array.of(1, 0, 0, 50, 0, 0))); // truncated ClientHello
    junk.push(encodeRecord(ContentType.handshake, 0, 0, fullMessage(1, 0, new Uint8Array(40)))); // ClientHello of zeros
    junk.push(encodeRecord(ContentType.applicationData, 1, 1, new Uint8Array(40))); // data without a session
    junk.push(encodeRecord(ContentType.changeCipherSpec, 0, 1, Uint8Array.of(1)));
    for (const [i, j] of junk.entries()) {
      await new Promise<void>((r) => sock.send(j, port, '127.0.0.1', () => r()));
      // Same process: let the server drain its socket so the kernel buffer does not overflow.
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 2));
    }
    sock.close();
    await until(() => server.stats.datagrams === junk.length);
    expect(server.sessionCount).toBe(0);
    expect(server.stats.handshakesStarted).toBe(0);
    const client = await connect(port);
    expect(await request(client, client.remote, 'alive')).toBe('echo:alive');
  });

  it('10,000 spoofed ClientHellos leave the session table empty and the server answering', async () => {
    const tap = new Tap(await UdpTransport.bind());
    const server = track(await echoServer({ transport: tap }));
    for (let i = 0; i < 10_000; i++) {
      const peer = { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 1024 + (i % 50_000) };
      const random = Uint8Array.from({ length: 32 }, (_, k) => (i * 31 + k) & 255);
      // half without a cookie, half with a forged one
      tap.inject(clientHello(random, i % 2 === 0 ? new Uint8Array(0) : new Uint8Array(16).fill(i & 255)), peer);
    }
    expect(server.sessionCount).toBe(0);
    expect(server.stats.handshakesStarted).toBe(0);
    expect(server.stats.helloVerifyRequests).toBe(10_000);
    expect(tap.spoofedReplies).toBe(10_000); // one small HelloVerifyRequest each, no more
    const client = await connect(server.address().port);
    expect(await request(client, client.remote, 'after the storm')).toBe('echo:after the storm');
    expect(server.sessionCount).toBe(1);
  });

  it('a cookie is bound to the address it was sent to', async () => {
    const tap = new Tap(await UdpTransport.bind());
    const server = track(await echoServer({ transport: tap }));
    const random = new Uint8Array(32).fill(9);
    let hvr: Uint8Array | undefined;
    const realSend = tap.send.bind(tap);
    tap.send = (d, p) => ((hvr = d), realSend(d, p));
    tap.inject(clientHello(random, new Uint8Array(0)), { address: '10.0.0.1', port: 5000 });
    const body = parseRecords(hvr!)[0]!.fragment.subarray(12);
    const cookie = body.subarray(3, 3 + body[2]!);
    tap.inject(clientHello(random, cookie, 1), { address: '10.0.0.2', port: 5000 }); // stolen cookie, other address
    expect(server.sessionCount).toBe(0);
    tap.inject(clientHello(random, cookie, 1), { address: '10.0.0.1', port: 5000 }); // the right address
    expect(server.sessionCount).toBe(1);
    expect(server.stats.handshakesStarted).toBe(1);
  });
});

describe('DTLS session table', () => {
  it('caps concurrent sessions', async () => {
    const server = track(await echoServer({ maxSessions: 1 }));
    await connect(server.address().port);
    const err = await failure(connectDtls({ host: '127.0.0.1', port: server.address().port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 200 }));
    expect(err.code).toBe('DTLS_HANDSHAKE_FAILED');
    expect(server.stats.sessionsRejected).toBe(1);
    expect(server.sessionCount).toBe(1);
  });

  it('when full, evicts the oldest unfinished handshake but never an established session', async () => {
    const server = track(await echoServer({ maxSessions: 2 }));
    const port = server.address().port;
    const established = await connect(port);
    // A client whose key exchange never arrives leaves a half-open handshake.
    const proxy = track(await UdpProxy.start(port));
    proxy.clientHook = (d) => (parseRecords(d).some((r) => r.type === ContentType.changeCipherSpec) ? 'drop' : 'forward');
    await failure(connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 150 }));
    expect(server.sessionCount).toBe(2);
    const late = await connect(port);
    expect(await request(late, late.remote, 'room')).toBe('echo:room');
    expect(await request(established, established.remote, 'kept')).toBe('echo:kept');
    expect(server.sessionCount).toBe(2);
    expect(server.stats.sessionsRejected).toBe(0);
  });

  it('drops handshakes that do not finish in time', async () => {
    const failed: string[] = [];
    const server = track(await echoServer({ handshakeTimeoutMs: 100, onEvent: (e) => void (e.type === 'handshake-failed' && failed.push(e.reason)) }));
    const proxy = track(await UdpProxy.start(server.address().port));
    proxy.clientHook = (d) => (parseRecords(d).some((r) => r.type === ContentType.changeCipherSpec) ? 'drop' : 'forward');
    await failure(connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 150 }));
    await until(() => server.sessionCount === 0);
    expect(server.stats.sessionsExpired).toBe(1);
    expect(failed).toEqual(['handshake-timeout']);
  });

  it('drops idle sessions', async () => {
    const closed: string[] = [];
    const server = track(await echoServer({ idleTimeoutMs: 150, onEvent: (e) => void (e.type === 'closed' && closed.push(e.reason)) }));
    const client = await connect(server.address().port);
    expect(await request(client, client.remote, 'x')).toBe('echo:x');
    await until(() => server.sessionCount === 0);
    expect(server.stats.sessionsExpired).toBe(1);
    expect(closed).toEqual(['idle']);
  });

  it('a new handshake from the same address and port replaces the old session (rebooted device)', async () => {
    const server = track(await echoServer());
    const port = server.address().port;
    const first = await connect(port);
    const local = first.address().port;
    expect(await request(first, first.remote, 'before reboot')).toBe('echo:before reboot');
    // "Power loss": the socket disappears without a close_notify.
    (first as unknown as { socket: { udp: { close(): void } } }).socket.udp.close();
    await until(() => first.isClosed);
    const second = await connect(port, { localPort: local });
    expect(second.address().port).toBe(local);
    expect(await request(second, second.remote, 'after reboot')).toBe('echo:after reboot');
    expect(server.stats.sessionsReplaced).toBe(1);
    expect(server.sessionCount).toBe(1);
  });

  it('retransmits flight 4 when it is lost, so the handshake completes in one attempt', async () => {
    const server = track(await echoServer({ retransmitMs: 100 }));
    const proxy = track(await UdpProxy.start(server.address().port));
    let dropped = 0;
    // Drop the first ServerHello flight (it is the second handshake datagram after the HelloVerifyRequest).
    proxy.serverHook = (d) => {
      const r = parseRecords(d)[0];
      if (r?.type === ContentType.handshake && r.fragment[0] === HandshakeType.serverHello && dropped === 0) return (dropped++, 'drop');
      return 'forward';
    };
    const client = await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 3000 });
    track(client);
    expect(dropped).toBe(1);
    expect(server.stats.handshakesStarted).toBe(1);
    expect(await request(client, client.remote, 'ok')).toBe('echo:ok');
  });
});
