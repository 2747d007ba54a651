/**
 * The client against forged datagrams: node-dtls-client does not check where a
 * datagram comes from, and a plaintext alert is unauthenticated (RFC 6347
 * §4.1.2.7), so one forged alert must not abort connectDtls.
 */
import { createSocket } from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { connectDtls } from '../../src/transport/dtls/client.js';
import { ContentType, encodeRecord } from '../../src/transport/dtls/record.js';
import { IDENTITY, KEY, UdpProxy, echoServer, request, closeAfterEach } from './helpers.js';

const track = closeAfterEach();

/** A plaintext fatal handshake_failure alert (RFC 5246 §7.2), epoch 0. */
const ALERT = encodeRecord(ContentType.alert, 0, 0, Uint8Array.of(2, 40));
const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('DTLS client against forged alerts', () => {
  it('a fatal alert from another port does not stop the handshake', async () => {
    const server = track(await echoServer());
    const proxy = track(await UdpProxy.start(server.address().port));
    const attacker = createSocket('udp4');
    track({ close: () => new Promise<void>((r) => attacker.close(() => r())) });
    let spoofed = 0;
    proxy.clientHook = (d) => {
      if (spoofed > 0) return 'forward';
      spoofed++;
      // Hold the ClientHello until the forged alert reached the client's port.
      attacker.send(ALERT, proxy.clientPeer!.port, '127.0.0.1', () => void pause(30).then(() => proxy.inject(d)));
      return 'drop';
    };
    const client = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 0, handshakeTimeoutMs: 3000 }));
    expect(spoofed).toBe(1);
    expect(await request(client, client.remote, 'not fooled')).toBe('echo:not fooled');
    // After the handshake too: forged datagrams from elsewhere never reach the application.
    const got: string[] = [];
    client.onMessage((d) => got.push(Buffer.from(d).toString()));
    await new Promise<void>((r) => attacker.send(Buffer.from('forged'), client.address().port, '127.0.0.1', () => r()));
    expect(await request(client, client.remote, 'still')).toBe('echo:still');
    expect(got).not.toContain('forged');
  });

  it('one fatal alert from the server address ends an attempt, but the next attempt is made and succeeds', async () => {
    const server = track(await echoServer());
    const proxy = track(await UdpProxy.start(server.address().port));
    let forged = 0;
    proxy.clientHook = () => {
      if (forged > 0) return 'forward';
      forged++;
      void pause(10).then(() => proxy.injectToClient(ALERT));
      return 'drop';
    };
    const client = track(await connectDtls({ host: '127.0.0.1', port: proxy.port, identity: IDENTITY, key: KEY, retries: 2, handshakeTimeoutMs: 3000, backoffMs: 20 }));
    expect(forged).toBe(1);
    expect(await request(client, client.remote, 'second try')).toBe('echo:second try');
    expect(server.stats.handshakesOk).toBe(1);
  });
});
