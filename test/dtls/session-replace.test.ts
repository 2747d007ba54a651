/**
 * A cookie-bearing ClientHello starts a new session that replaces the peer's
 * old one (a rebooted device, RFC 6347 §4.2.8), but a late or replayed copy of
 * an earlier hello, whose cookie still verifies, must not.
 */
import { describe, expect, it } from 'vitest';
import { connectDtls } from '../../src/transport/dtls/client.js';
import { HandshakeType } from '../../src/transport/dtls/messages.js';
import { ContentType, parseRecords } from '../../src/transport/dtls/record.js';
import { IDENTITY, KEY, OTHER_KEY, UdpProxy, echoServer, request, until, closeAfterEach } from './helpers.js';

const track = closeAfterEach();

const isHello = (d: Uint8Array): boolean => {
  const r = parseRecords(d)[0];
  return r?.type === ContentType.handshake && r.epoch === 0 && r.fragment[0] === HandshakeType.clientHello;
};

describe('DTLS session replacement', () => {
  it('replaying an earlier cookie-bearing ClientHello after a new session is established leaves that session working', async () => {
    const server = track(await echoServer());
    // Every client behind the proxy has the same address and port for the server.
    const proxy = track(await UdpProxy.start(server.address().port));
    const first = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY }));
    expect(await request(first, first.remote, 'one')).toBe('echo:one');
    const oldHellos = proxy.toServer.filter(isHello);
    expect(oldHellos.length).toBe(2); // without and with the cookie

    // "Reboot": a new handshake from the same address and port replaces the session.
    const second = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY }));
    expect(server.stats.sessionsReplaced).toBe(1);
    expect(await request(second, second.remote, 'two')).toBe('echo:two');

    for (const h of oldHellos) await proxy.inject(h);
    // Both copies were handled: the cookie-less one got a HelloVerifyRequest, the other was dropped or started a handshake.
    await until(() => server.stats.helloVerifyRequests === 3 && (server.stats.staleHellosDropped === 1 || server.stats.handshakesStarted === 3));
    expect(await request(second, second.remote, 'three', 0, 1500)).toBe('echo:three');
    expect(server.stats.staleHellosDropped).toBe(1);
    expect(server.stats.handshakesStarted).toBe(2);
    expect(server.stats.sessionsReplaced).toBe(1);
    expect(server.sessionCount).toBe(1);
  });

  it('keeps the established session until the new handshake completes (RFC 6347 §4.2.8): a failed one leaves it working', async () => {
    const events: string[] = [];
    const server = track(await echoServer({ onEvent: (e) => void events.push(`${e.type}: ${'reason' in e ? e.reason : ''}`) }));
    const proxy = track(await UdpProxy.start(server.address().port));
    const first = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY }));
    expect(await request(first, first.remote, 'one')).toBe('echo:one');

    // Same address and port for the server, a wrong key: the new handshake fails.
    await expect(connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: OTHER_KEY, retries: 1, backoffMs: 10 })).rejects.toMatchObject({
      code: 'DTLS_HANDSHAKE_FAILED',
    });
    expect(server.stats.handshakesFailed).toBe(2);
    expect(server.stats.sessionsReplaced).toBe(0);
    expect(await request(first, first.remote, 'two', 0, 1500)).toBe('echo:two');

    // A new handshake that stalls before its Finished: the old session serves meanwhile, then it times out.
    proxy.clientHook = (d) => (parseRecords(d).some((r) => r.type === ContentType.changeCipherSpec) ? 'drop' : 'forward');
    await expect(connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 150 })).rejects.toMatchObject({
      code: 'DTLS_HANDSHAKE_FAILED',
    });
    expect(server.sessionCount).toBe(2); // the session and its would-be replacement
    expect(await request(first, first.remote, 'three', 0, 1500)).toBe('echo:three');
    expect(server.stats.sessionsReplaced).toBe(0);
    expect(events.filter((e) => e.startsWith('closed'))).toEqual([]);
  });
});
