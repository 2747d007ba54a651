/**
 * Handshake-state injection: forged or corrupted records and alerts injected
 * into a handshake in progress must not end it (RFC 6347 §4.1.2.7: records
 * that fail authentication are silently discarded; plaintext alerts are not
 * authenticated). Only a Finished that fails authentication in the same
 * datagram as the client's ChangeCipherSpec and the ClientKeyExchange whose
 * keys it fails under is a wrong PSK (forged ClientKeyExchanges: forged-cke.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { connectDtls } from '../../src/transport/dtls/client.js';
import { HandshakeType } from '../../src/transport/dtls/messages.js';
import { ContentType, encodeRecord, parseRecords, type DtlsRecord } from '../../src/transport/dtls/record.js';
import type { DtlsServerEvent } from '../../src/transport/dtls/server.js';
import { IDENTITY, KEY, OTHER_KEY, UdpProxy, echoServer, request, until, closeAfterEach } from './helpers.js';

const track = closeAfterEach();

const raw = (r: DtlsRecord): Uint8Array => encodeRecord(r.type, r.epoch, r.seq, r.fragment, r.version);
const cat = (parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts));

/**
 * Makes the proxy split the client's flight 5 (ClientKeyExchange, CCS, Finished
 * in one datagram) into "everything up to CCS", then `between` datagrams, then
 * the Finished alone.
 */
function splitFlight5(proxy: UdpProxy, between: Uint8Array[]): { done: () => boolean } {
  let split = false;
  proxy.clientHook = (d) => {
    const recs = parseRecords(d);
    const ccs = recs.findIndex((r) => r.type === ContentType.changeCipherSpec);
    if (split || ccs < 0 || ccs === recs.length - 1) return 'forward';
    split = true;
    void (async () => {
      await proxy.inject(cat(recs.slice(0, ccs + 1).map(raw)));
      for (const b of between) await proxy.inject(b);
      await proxy.inject(cat(recs.slice(ccs + 1).map(raw)));
    })();
    return 'drop';
  };
  return { done: () => split };
}

/** A well-formed epoch-1 handshake record that cannot authenticate. */
function junkEpoch1(seq: number, fill: number): Uint8Array {
  return encodeRecord(ContentType.handshake, 1, seq, new Uint8Array(40).fill(fill));
}

describe('DTLS handshake injection (RFC 6347 §4.1.2.7)', () => {
  it('junk epoch-1 records between ChangeCipherSpec and a separately sent Finished are dropped; the handshake completes', async () => {
    const events: DtlsServerEvent[] = [];
    const server = track(await echoServer({ onEvent: (e) => events.push(e) }));
    const proxy = track(await UdpProxy.start(server.address().port));
    const split = splitFlight5(proxy, [junkEpoch1(0, 0xaa), junkEpoch1(7, 0x55), junkEpoch1(1 << 20, 0)]);
    const client = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 3000 }));
    expect(split.done()).toBe(true);
    expect(await request(client, client.remote, 'through the junk')).toBe('echo:through the junk');
    expect(server.stats.handshakesOk).toBe(1);
    expect(server.stats.handshakesFailed).toBe(0);
    expect(server.stats.badRecordsDropped).toBe(3);
    expect(events.filter((e) => e.type === 'handshake-failed')).toEqual([]);
  });

  it('a wrong PSK whose Finished arrives apart from the ChangeCipherSpec ends in the handshake timeout with a clear reason', async () => {
    const failed: string[] = [];
    const server = track(await echoServer({ handshakeTimeoutMs: 200, onEvent: (e) => void (e.type === 'handshake-failed' && failed.push(e.reason)) }));
    const proxy = track(await UdpProxy.start(server.address().port));
    splitFlight5(proxy, []);
    await expect(connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: OTHER_KEY, retries: 0, handshakeTimeoutMs: 400 })).rejects.toMatchObject({
      code: 'DTLS_HANDSHAKE_FAILED',
    });
    await until(() => failed.length === 1);
    expect(failed[0]).toMatch(/^handshake-timeout: Finished never authenticated \(wrong PSK for identity "dev-0001"\?\)/);
    expect(server.sessionCount).toBe(0);
  });

  it('a forged plaintext fatal alert during the handshake is ignored', async () => {
    const server = track(await echoServer());
    const proxy = track(await UdpProxy.start(server.address().port));
    let forged = 0;
    // When our flight 4 leaves, a "client" fatal alert (handshake_failure) reaches the server first.
    proxy.serverHook = (d) => {
      if (forged === 0 && parseRecords(d).some((r) => r.type === ContentType.handshake && r.fragment[0] === HandshakeType.serverHello)) {
        forged++;
        void proxy.inject(encodeRecord(ContentType.alert, 0, 9, Uint8Array.of(2, 40)));
      }
      return 'forward';
    };
    const client = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 3000 }));
    expect(forged).toBe(1);
    expect(await request(client, client.remote, 'alert ignored')).toBe('echo:alert ignored');
    expect(server.stats.handshakesStarted).toBe(1);
    expect(server.stats.handshakesFailed).toBe(0);
  });

  it('drops the master secret and the transcript once established, and quotes attacker-supplied identities', async () => {
    const failed: string[] = [];
    const server = track(await echoServer({ handshakeTimeoutMs: 200, onEvent: (e) => void (e.type === 'handshake-failed' && failed.push(e.reason)) }));
    const client = track(await connectDtls({ host: '127.0.0.1', port: server.address().port, identity: IDENTITY, key: KEY }));
    expect(await request(client, client.remote, 'x')).toBe('echo:x');
    const sessions = [...(server as unknown as { table: { values(): Iterable<{ handshake: { holdsSecrets: boolean; state: string } }> } }).table.values()];
    expect(sessions.map((x) => [x.handshake.state, x.handshake.holdsSecrets])).toEqual([['established', false]]);

    const evil = 'a"\n\u001b[31mforged log line';
    await expect(connectDtls({ host: '127.0.0.1', port: server.address().port, identity: evil, key: KEY, retries: 0, handshakeTimeoutMs: 500 })).rejects.toMatchObject({ code: 'DTLS_HANDSHAKE_FAILED' });
    await until(() => failed.length >= 1);
    expect(failed[0]).toBe(`client Finished did not authenticate (unknown PSK identity ${JSON.stringify(evil)})`);
    const failedSessions = [...(server as unknown as { table: { values(): Iterable<{ handshake: { holdsSecrets: boolean } }> } }).table.values()];
    expect(failedSessions.every((x) => !x.handshake.holdsSecrets)).toBe(true);
    expect(failed[0]).not.toMatch(/[\n\u001b]/);
  });
});
