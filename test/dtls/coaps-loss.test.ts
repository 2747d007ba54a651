/**
 * coaps over a lossy link: our client and our file server through a UDP proxy
 * that loses 10 % of the datagrams each way (the shared ImpairedTransport),
 * during the DTLS handshake and the block-wise transfer. The handshake is
 * recovered by the client's retries and the server's flight retransmission,
 * the transfer by CoAP's CON retransmission (short ACK timeout to stay fast).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { downloadToFile } from '../../src/client/file-sink.js';
import { startFileServer } from '../../src/server/serve.js';
import { openClient } from '../../src/client/open.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { IDENTITY, KEY, UdpProxy } from './helpers.js';

const SIZE = 128 * 1024;
const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

describe('coaps with 10 % loss both ways', () => {
  it.each([1, 2])('handshakes and downloads 128 KiB intact (seed %i)', async (seed) => {
    const dir = await mkdtemp(join(tmpdir(), 'coapfw-coaps-loss-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const data = Uint8Array.from({ length: SIZE }, (_, i) => (i * 31 + seed) & 0xff);
    await writeFile(join(dir, 'fw.bin'), data);
    const server = await startFileServer({
      dir,
      coap: false,
      refreshMs: 0,
      params: { ackTimeoutMs: 50 },
      secure: { psk: PskStore.fromEntries([[IDENTITY, KEY]]), host: '127.0.0.1', port: 0, retransmitMs: 100 },
    });
    cleanup.push(() => server.close());
    const proxy = await UdpProxy.start(server.dtls!.address().port, {
      toServer: { loss: 0.1, seed },
      toClient: { loss: 0.1, seed: seed + 100 },
    });
    cleanup.push(() => proxy.close());

    const uri = `coaps://127.0.0.1:${proxy.port}/files/fw.bin`;
    const client = await openClient(uri, {
      psk: { identity: IDENTITY, key: KEY },
      dtls: { retries: 20, handshakeTimeoutMs: 400, backoffMs: 20, maxBackoffMs: 200 },
      params: { ackTimeoutMs: 50 },
    });
    cleanup.push(() => client.close());
    const out = join(dir, 'fw.out');
    const r = await downloadToFile(client, uri, out, { retry: { attempts: 10, baseMs: 20, maxMs: 200 } });
    expect(r.bytes).toBe(SIZE);
    expect(Buffer.compare(await readFile(out), Buffer.from(data))).toBe(0);
    // The loss really happened, and the server had to send again to get through it (a retransmitted
    // response to Block2, a block asked for again with Q-Block2: more datagrams than blocks either way).
    expect(proxy.dropped).toBeGreaterThan(10);
    expect(server.endpoint.stats.sent).toBeGreaterThan(r.blocks);
    expect(server.dtls!.stats.handshakesOk).toBeGreaterThanOrEqual(1);
  });
});
