/**
 * Per-address and per-identity limits of the DTLS server: one IP address with
 * many ports cannot evict other devices' handshakes, and one PSK identity
 * cannot hold all sessions.
 */
import { describe, expect, it } from 'vitest';
import { connectDtls, type DtlsClientTransport } from '../../src/transport/dtls/client.js';
import { HandshakeType, TLS_PSK_WITH_AES_128_CCM_8, fullMessage } from '../../src/transport/dtls/messages.js';
import { ContentType, encodeRecord, parseRecords } from '../../src/transport/dtls/record.js';
import { createDtlsServer, retransmitScheduleMs, type DtlsServerEvent } from '../../src/transport/dtls/server.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import type { DatagramHandler, Peer, Transport } from '../../src/core/transport.js';
import { IDENTITY, KEY, OTHER_IDENTITY, OTHER_KEY, echoServer, request, until, closeAfterEach } from './helpers.js';

const track = closeAfterEach();

/** An in-memory transport: the test injects datagrams from any address and reads the last reply to each. */
class Memory implements Transport {
  handler: DatagramHandler = () => {};
  readonly last = new Map<string, Uint8Array>();
  inject(d: Uint8Array, peer: Peer): void {
    this.handler(d, peer);
  }
  send(d: Uint8Array, peer: Peer): Promise<void> {
    this.last.set(`${peer.address}:${peer.port}`, d);
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
}

function clientHello(random: Uint8Array, cookie: Uint8Array, seq: number): Uint8Array {
  const body = Buffer.concat([
    Buffer.from([0xfe, 0xfd]), random, Buffer.from([0, cookie.length]), cookie,
    Buffer.from([0, 2, TLS_PSK_WITH_AES_128_CCM_8 >> 8, TLS_PSK_WITH_AES_128_CCM_8 & 0xff, 1, 0]),
  ]);
  return encodeRecord(ContentType.handshake, 0, seq, fullMessage(HandshakeType.clientHello, seq, body));
}

/** Does the cookie exchange from `peer` and leaves a half-open handshake. */
function halfOpen(mem: Memory, peer: Peer, n: number): void {
  const random = new Uint8Array(32).fill(n & 255);
  new DataView(random.buffer).setUint32(0, n);
  mem.inject(clientHello(random, new Uint8Array(0), 0), peer);
  const hvr = parseRecords(mem.last.get(`${peer.address}:${peer.port}`)!)[0]!;
  expect(hvr.fragment[0]).toBe(HandshakeType.helloVerifyRequest);
  const body = hvr.fragment.subarray(12);
  mem.inject(clientHello(random, body.subarray(3, 3 + body[2]!), 1), peer);
}

describe('DTLS server limits', () => {
  it('one address with many ports cannot evict other devices\' half-open handshakes', async () => {
    const mem = new Memory();
    const failed: DtlsServerEvent[] = [];
    const server = track(
      await createDtlsServer({ transport: mem, psk: PskStore.fromEntries([[IDENTITY, KEY]]), maxSessions: 20, onEvent: (e) => void (e.type === 'handshake-failed' && failed.push(e)) }),
    );
    const devices = [1, 2, 3].map((i) => ({ address: `192.0.2.${i}`, port: 5684 }));
    devices.forEach((d, i) => halfOpen(mem, d, 1_000_000 + i));
    for (let i = 0; i < 100; i++) halfOpen(mem, { address: '198.51.100.7', port: 20_000 + i }, i);
    expect(server.stats.handshakesStarted).toBe(103);
    expect(server.sessionCount).toBe(3 + 8); // the devices plus the attacker's cap
    expect(server.stats.handshakesEvictedPerAddress).toBe(92);
    expect(failed.every((e) => e.peer.address === '198.51.100.7')).toBe(true);
    expect(failed.length).toBe(92);

    // A full table makes room at the address holding most handshakes, not at the oldest device.
    const m2 = new Memory();
    const crowded = track(await createDtlsServer({ transport: m2, psk: PskStore.fromEntries([[IDENTITY, KEY]]), maxSessions: 6, maxHandshakesPerAddress: 4 }));
    halfOpen(m2, devices[0]!, 1);
    halfOpen(m2, devices[1]!, 2);
    for (let i = 0; i < 4; i++) halfOpen(m2, { address: '198.51.100.7', port: 30_000 + i }, 10 + i);
    halfOpen(m2, devices[2]!, 3); // table full (6): one of the attacker's four goes
    expect(crowded.sessionCount).toBe(6);
    expect(crowded.stats.sessionsRejected).toBe(0);
    expect((crowded as unknown as { table: { handshakesOf(a: string): unknown[] } }).table.handshakesOf('192.0.2.1').length).toBe(1);
  });

  it('one identity holds at most maxSessionsPerIdentity established sessions; its oldest is closed', async () => {
    const closed: string[] = [];
    const server = track(await echoServer({ maxSessionsPerIdentity: 2, onEvent: (e) => void (e.type === 'closed' && closed.push(e.reason)) }));
    const port = server.address().port;
    const connect = async (identity = IDENTITY, key = KEY): Promise<DtlsClientTransport> => track(await connectDtls({ host: '127.0.0.1', port, identity, key }));
    const other = await connect(OTHER_IDENTITY, OTHER_KEY);
    const a = await connect();
    const b = await connect();
    expect(server.sessionCount).toBe(3);
    const c = await connect();
    await until(() => a.isClosed); // the server's close_notify reached the oldest
    expect(server.sessionCount).toBe(3);
    expect(server.stats.sessionsClosedPerIdentity).toBe(1);
    expect(closed).toEqual(['more than 2 sessions of identity "dev-0001"']);
    for (const t of [b, c, other]) expect(await request(t, t.remote, 'alive')).toBe('echo:alive');
  });

  it('validates the limits and derives the handshake timeout from the retransmission schedule', async () => {
    const psk = PskStore.fromEntries([[IDENTITY, KEY]]);
    for (const bad of [{ maxRetransmits: -1 }, { maxRetransmits: 1.5 }, { maxRetransmits: Number.NaN }, { maxHandshakesPerAddress: 0 }, { maxSessionsPerIdentity: 2.5 }]) {
      await expect(createDtlsServer({ transport: new Memory(), psk, ...bad })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    expect(retransmitScheduleMs(1000, 5)).toBe(63_000);
    expect(retransmitScheduleMs(1000, 0)).toBe(1000);
    expect(retransmitScheduleMs(20_000, 3)).toBe(20_000 + 40_000 + 60_000 + 60_000);
    const s = track(await createDtlsServer({ transport: new Memory(), psk, retransmitMs: 100, maxRetransmits: 2 }));
    expect((s as unknown as { opts: { handshakeTimeoutMs: number } }).opts.handshakeTimeoutMs).toBe(700);
    const zero = track(await createDtlsServer({ transport: new Memory(), psk, maxRetransmits: 0 }));
    expect((zero as unknown as { opts: { maxRetransmits: number } }).opts.maxRetransmits).toBe(0);
  });
});
