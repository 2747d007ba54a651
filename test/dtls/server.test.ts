import { afterEach, describe, expect, it } from 'vitest';
import { connectDtls, type DtlsClientTransport } from '../../src/transport/dtls/client.js';
import type { DtlsServer } from '../../src/transport/dtls/server.js';
import { IDENTITY, KEY, echoServer, request } from './helpers.js';

const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c.close();
});

async function setup(): Promise<{ server: DtlsServer; client: DtlsClientTransport }> {
  const server = await echoServer();
  cleanup.push(server);
  const client = await connectDtls({ host: '127.0.0.1', port: server.address().port, identity: IDENTITY, key: KEY });
  cleanup.push(client);
  return { server, client };
}

describe('DTLS server with node-dtls-client', () => {
  it('completes a handshake and echoes application data both ways', async () => {
    const { server, client } = await setup();
    expect(await request(client, client.remote, 'hello')).toBe('echo:hello');
    expect(await request(client, client.remote, 'again')).toBe('echo:again');
    expect(server.stats.handshakesOk).toBe(1);
    expect(server.stats.helloVerifyRequests).toBe(1);
    expect(server.sessionCount).toBe(1);
  });
});
