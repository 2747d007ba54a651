/**
 * PSK identity oracle (issue 8, item 9): a client must not learn which PSK
 * identities exist. Before, an unknown identity was dropped silently (the
 * client waited for its handshake timeout) while a known identity with a
 * wrong key got a fatal alert at once. RFC 4279 §2: the server may "continue
 * the protocol as if the PSK identity existed but the key was incorrect".
 * Both now end the same way: the same datagrams back (record types, epochs,
 * lengths, the same fatal alert), in answer to the same client flight.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { connectDtls } from '../../src/transport/dtls/client.js';
import { ServerHandshake } from '../../src/transport/dtls/handshake.js';
import { HandshakeType, TLS_PSK_WITH_AES_128_CCM_8, type ClientHello } from '../../src/transport/dtls/messages.js';
import { ContentType, parseRecords } from '../../src/transport/dtls/record.js';
import type { DtlsServerEvent } from '../../src/transport/dtls/server.js';
import { IDENTITY, KEY, OTHER_IDENTITY, UdpProxy, closeAfterEach, echoServer, until } from './helpers.js';

const track = closeAfterEach();

/** What a client can observe of the server's datagrams: per record, type, epoch, length; alerts in full. */
function shape(datagrams: readonly Uint8Array[]): string[] {
  return datagrams.map((d) =>
    parseRecords(d)
      .map((r) => `${r.type}/${r.epoch}/${r.fragment.length}${r.type === ContentType.alert ? `/${Buffer.from(r.fragment).toString('hex')}` : ''}`)
      .join(' '),
  );
}

interface Probe {
  error: string;
  /** Server datagrams after the client's flight 5 (ClientKeyExchange, ChangeCipherSpec, Finished). */
  afterFlight5: string[];
  /** Server datagrams before it (flight 4, and its retransmissions). */
  beforeFlight5: number;
  ms: number;
  reason: string;
}

async function probe(identity: string, key: Uint8Array): Promise<Probe> {
  const failed: string[] = [];
  const server = track(await echoServer({ onEvent: (e: DtlsServerEvent) => void (e.type === 'handshake-failed' && failed.push(e.reason)) }));
  const proxy = track(await UdpProxy.start(server.address().port));
  let flight5At = -1;
  proxy.clientHook = (d) => {
    if (flight5At < 0 && parseRecords(d).some((r) => r.type === ContentType.changeCipherSpec)) flight5At = proxy.toClient.length;
    return 'forward';
  };
  const t0 = performance.now();
  // A 2 s handshake timeout: the silent drop of the old code shows up as a timeout, not an alert.
  const err = await connectDtls({ host: '127.0.0.1', port: proxy.port, identity, key, retries: 0, handshakeTimeoutMs: 2000 }).then(
    () => new Error('connected'),
    (e: unknown) => e as Error,
  );
  const ms = performance.now() - t0;
  await until(() => failed.length >= 1, 5000);
  expect(flight5At, 'the client sent its flight 5').toBeGreaterThan(0);
  return {
    error: err.message.replaceAll(JSON.stringify(identity), '"ID"').replace(/127\.0\.0\.1:\d+/, 'HOST'),
    afterFlight5: shape(proxy.toClient.slice(flight5At)),
    beforeFlight5: flight5At,
    ms,
    reason: failed[0]!,
  };
}

describe('DTLS PSK identities are not revealed (RFC 4279 §2)', () => {
  it('an unknown identity and a known identity with a wrong key look the same to the client', { timeout: 60_000 }, async () => {
    const known: Probe[] = [];
    const unknown: Probe[] = [];
    const N = 6;
    for (let i = 0; i < N; i++) {
      known.push(await probe(i % 2 === 0 ? IDENTITY : OTHER_IDENTITY, randomBytes(16)));
      unknown.push(await probe(`nobody-${randomBytes(4).toString('hex')}`, i % 2 === 0 ? KEY : randomBytes(16)));
    }
    const reference = known[0]!;
    // One fatal alert datagram in answer to flight 5, and nothing else.
    expect(reference.afterFlight5).toHaveLength(1);
    expect(reference.afterFlight5[0]).toMatch(new RegExp(`^${ContentType.alert}/0/2/02`));
    let distinguishable = 0;
    for (const p of [...known, ...unknown]) {
      if (p.error !== reference.error || p.afterFlight5.join('|') !== reference.afterFlight5.join('|') || p.beforeFlight5 !== reference.beforeFlight5) distinguishable++;
    }
    const median = (xs: Probe[]): number => xs.map((p) => p.ms).sort((a, b) => a - b)[xs.length >> 1]!;
    console.log(JSON.stringify({ test: 'dtls-psk-identity-oracle', inputsTried: 2 * N, distinguishable, medianMsKnownWrongKey: Math.round(median(known)), medianMsUnknownIdentity: Math.round(median(unknown)) }));
    expect(unknown.map((p) => p.error)).toEqual(known.map(() => reference.error));
    expect(distinguishable).toBe(0);
    // The server's own events still say which it was, for the operator.
    expect(known.every((p) => /wrong PSK for identity "dev-000[12]"/.test(p.reason))).toBe(true);
    expect(unknown.every((p) => /unknown PSK identity "nobody-[0-9a-f]{8}"/.test(p.reason))).toBe(true);
  });

  it('the handshake gives an unknown identity candidate keys like a known one, from a random key that is not kept', () => {
    const hello: ClientHello = {
      clientVersion: 0xfefd,
      random: new Uint8Array(32).fill(7),
      sessionId: new Uint8Array(0),
      cookie: new Uint8Array(0),
      cipherSuites: [TLS_PSK_WITH_AES_128_CCM_8],
      compressionMethods: Uint8Array.of(0),
      extensions: new Map(),
      cookieInput: new Uint8Array(0),
    };
    const drawn: Uint8Array[] = [];
    const random = (n: number): Uint8Array => {
      const b = randomBytes(n);
      drawn.push(b);
      return b;
    };
    const hs = new ServerHandshake(hello, new Uint8Array(12), 1, { lookup: (id) => (id === IDENTITY ? KEY : undefined), random });
    const cke = (id: string): [number, number, Uint8Array] => {
      const b = Buffer.from(id);
      return [HandshakeType.clientKeyExchange, 2, Uint8Array.from(Buffer.concat([Buffer.from([0, b.length]), b]))];
    };
    const a = hs.onHandshake(...cke(IDENTITY));
    const b = hs.onHandshake(...cke('nobody'));
    expect(a.kind).toBe('keys');
    expect(b.kind).toBe('keys');
    expect(hs.candidateIdentities).toEqual([IDENTITY, 'nobody']);
    expect(hs.candidateFailure(1)).toBe('unknown PSK identity "nobody"');
    // The stand-in key was drawn (32-byte server random, then 16 bytes) and wiped after use.
    expect(drawn.map((d) => d.length)).toEqual([32, 16]);
    expect(drawn[1]!.every((x) => x === 0)).toBe(true);
    // The same message repeated is the same candidate (a retransmitted flight 5), not a new random key.
    expect(hs.onHandshake(...cke('nobody'))).toMatchObject({ kind: 'keys', index: 1 });
    expect(drawn).toHaveLength(2);
  });
});
