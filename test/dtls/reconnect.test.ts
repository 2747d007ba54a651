import { afterEach, describe, expect, it } from 'vitest';
import { ReconnectingDtlsClient } from '../../src/transport/dtls/reconnecting.js';
import { freeUdpPort } from '../../bench/procs.js';
import { IDENTITY, KEY, echoServer, request, until } from './helpers.js';

const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c.close();
});

describe('ReconnectingDtlsClient', () => {
  it('handshakes again after the server restarted and lost the session', async () => {
    const first = await echoServer();
    const port = first.address().port;
    const client = await ReconnectingDtlsClient.connect({ host: 'localhost', port, identity: IDENTITY, key: KEY });
    cleanup.push(client);
    expect(client.remote.address).toBe('127.0.0.1'); // resolved once
    expect(await request(client, client.remote, 'a')).toBe('echo:a');
    // Restart: the new server on the same port has no session for us; our close_notify-less
    // records are dropped, so the upper layer times out and asks for a reconnect.
    await first.close();
    const second = await echoServer({ bind: { port } });
    cleanup.push(second);
    await expect(request(client, client.remote, 'lost', 0, 300)).rejects.toThrow(/no reply/);
    await client.reconnect();
    expect(await request(client, client.remote, 'b')).toBe('echo:b');
    expect(client.connects).toBe(2);
    expect(second.stats.handshakesOk).toBe(1);
  });

  it('reconnects on send after the server closed the connection', async () => {
    const server = await echoServer();
    cleanup.push(server);
    const client = await ReconnectingDtlsClient.connect({ host: '127.0.0.1', port: server.address().port, identity: IDENTITY, key: KEY });
    cleanup.push(client);
    expect(await request(client, client.remote, 'x')).toBe('echo:x');
    // The server goes away politely (close_notify) and comes back on the same port.
    const port = server.address().port;
    await server.close();
    const again = await echoServer({ bind: { port } });
    cleanup.push(again);
    await until(() => client['current'].isClosed);
    expect(await request(client, client.remote, 'y')).toBe('echo:y');
    expect(client.connects).toBe(2);
  });

  it('works over IPv6 loopback', async () => {
    const server = await echoServer({ bind: { host: '::1' } });
    cleanup.push(server);
    const client = await ReconnectingDtlsClient.connect({ host: '[::1]', port: server.address().port, identity: IDENTITY, key: KEY });
    cleanup.push(client);
    expect(client.remote.address).toBe('::1');
    expect(await request(client, client.remote, 'v6')).toBe('echo:v6');
  });
});

describe('ReconnectingDtlsClient with a fixed local port', () => {
  it('closes the old socket before binding the same port again, so the first attempt succeeds', async () => {
    const server = await echoServer();
    cleanup.push(server);
    const localPort = await freeUdpPort();
    const client = await ReconnectingDtlsClient.connect({ host: '127.0.0.1', port: server.address().port, identity: IDENTITY, key: KEY, localPort, retries: 0 });
    cleanup.push(client);
    expect(client.address().port).toBe(localPort);
    expect(await request(client, client.remote, 'before')).toBe('echo:before');
    await client.reconnect();
    await client.reconnect();
    expect(client.connects).toBe(3);
    expect(client.address().port).toBe(localPort);
    expect(await request(client, client.remote, 'after')).toBe('echo:after');
    expect(server.stats.handshakesStarted).toBe(3);
  });
});
