/**
 * coaps end to end on loopback: our client (openClient with PSK, on
 * node-dtls-client) downloading from our file server over our DTLS server,
 * with the same files also on plain CoAP from one startFileServer call.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadToFile } from '../../src/client/file-sink.js';
import { isCoapfwError } from '../../src/errors.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { openClient } from '../../src/client/open.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { IDENTITY, KEY, OTHER_IDENTITY, OTHER_KEY, until } from './helpers.js';

const MIB = 1024 * 1024;
const FAST = { ackTimeoutMs: 200 };
let dir: string;
let server: FileServer;
let data: Uint8Array;
let coaps: string;
let coap: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-coaps-'));
  data = Uint8Array.from({ length: MIB }, (_, i) => (i * 2654435761) >>> 24);
  await writeFile(join(dir, 'big.bin'), data);
  await writeFile(join(dir, 'small.txt'), 'hello over coaps');
  server = await startFileServer({
    dir,
    host: '127.0.0.1',
    port: 0,
    refreshMs: 0,
    secure: { psk: PskStore.fromEntries([[IDENTITY, KEY], [OTHER_IDENTITY, OTHER_KEY]]), host: '127.0.0.1', port: 0 },
  });
  coaps = `coaps://127.0.0.1:${server.dtls!.address().port}`;
  coap = `coap://127.0.0.1:${server.address().port}`;
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const hex = (b: Uint8Array): string => bytesToHex(sha256(b));

describe('coaps: our client against our server', () => {
  it('serves one repository on coap and coaps from one startFileServer call', () => {
    expect(server.endpoints).toHaveLength(2);
    expect(server.dtls).toBeDefined();
    expect(server.address().port).not.toBe(server.dtls!.address().port);
  });

  it('downloads 1 MiB over coaps with the right SHA-256 (key given as hex text)', async () => {
    const client = await openClient(`${coaps}/files/big.bin`, {
      psk: { identity: IDENTITY, key: `0x${Buffer.from(KEY).toString('hex')}` },
      params: FAST,
    });
    try {
      // The request path names the DTLS client's remote peer.
      expect(client.peer).toEqual({ address: '127.0.0.1', port: server.dtls!.address().port });
      const out = join(dir, 'big.out');
      const r = await downloadToFile(client, `${coaps}/files/big.bin`, out, { retry: { attempts: 5, baseMs: 50 } });
      expect(r.bytes).toBe(MIB);
      expect(r.blocks).toBe(1024);
      expect(hex(new Uint8Array(await readFile(out)))).toBe(hex(data));
    } finally {
      await client.close();
    }
    expect(server.dtls!.stats.handshakesOk).toBeGreaterThanOrEqual(1);
  });

  it('also serves the same file over plain coap', async () => {
    const client = await openClient(`${coap}/files/small.txt`, { params: FAST });
    try {
      const out = join(dir, 'small.out');
      await downloadToFile(client, `${coap}/files/small.txt`, out);
      expect(await readFile(out, 'utf8')).toBe('hello over coaps');
    } finally {
      await client.close();
    }
  });

  it('fails a wrong key with DTLS_HANDSHAKE_FAILED and keeps serving another client', async () => {
    const failedBefore = server.dtls!.stats.handshakesFailed;
    const err = await openClient(`${coaps}/files/small.txt`, {
      psk: { identity: IDENTITY, key: OTHER_KEY },
      dtls: { retries: 2, handshakeTimeoutMs: 500, backoffMs: 20 },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isCoapfwError(err, 'DTLS_HANDSHAKE_FAILED')).toBe(true);
    expect((err as Error).message).toMatch(/wrong PSK|did not accept the key/);
    expect(server.dtls!.stats.handshakesFailed).toBeGreaterThan(failedBefore);

    const other = await openClient(`${coaps}/files/small.txt`, { psk: { identity: OTHER_IDENTITY, key: OTHER_KEY }, params: FAST });
    try {
      const out = join(dir, 'small2.out');
      await downloadToFile(other, `${coaps}/files/small.txt`, out);
      expect(await readFile(out, 'utf8')).toBe('hello over coaps');
    } finally {
      await other.close();
    }
  });

  it('rejects coaps without credentials and bad credentials with typed errors', async () => {
    await expect(openClient(`${coaps}/x`)).rejects.toMatchObject({ code: 'BAD_URI' });
    await expect(openClient(`${coaps}/x`, { psk: { identity: '', key: KEY } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(openClient(`${coaps}/x`, { psk: { identity: IDENTITY, key: '0xabc' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('handshakes again after the server silently expired our session (TIMEOUT triggers a reconnect)', async () => {
    // Idle sessions expire without an alert, as after a server restart: the client only sees timeouts.
    const idle = await startFileServer({
      dir,
      coap: false,
      refreshMs: 0,
      secure: { psk: PskStore.fromEntries([[IDENTITY, KEY]]), host: '127.0.0.1', port: 0, idleTimeoutMs: 200 },
    });
    const uri = `coaps://127.0.0.1:${idle.dtls!.address().port}/files/small.txt`;
    const client = await openClient(uri, { psk: { identity: IDENTITY, key: KEY }, params: { ackTimeoutMs: 50, maxRetransmit: 1 } });
    try {
      await downloadToFile(client, uri, join(dir, 'r1.out'));
      expect(idle.dtls!.stats.handshakesOk).toBe(1);
      await until(() => idle.dtls!.sessionCount === 0);
      const out = join(dir, 'r2.out');
      await downloadToFile(client, uri, out, { retry: { attempts: 4, baseMs: 20 } });
      expect(await readFile(out, 'utf8')).toBe('hello over coaps');
      expect(idle.dtls!.stats.handshakesOk).toBe(2);
    } finally {
      await client.close();
      await idle.close();
    }
  });

  it('serves IPv4 and IPv6 clients on the default dual-stack bind (::), as `coapfw serve` does', async () => {
    const dual = await startFileServer({ dir, coap: false, refreshMs: 0, secure: { psk: PskStore.fromEntries([[IDENTITY, KEY]]), port: 0 } });
    try {
      const port = dual.dtls!.address().port;
      for (const host of ['127.0.0.1', '[::1]']) {
        const uri = `coaps://${host}:${port}/files/small.txt`;
        const client = await openClient(uri, { psk: { identity: IDENTITY, key: KEY }, params: FAST });
        try {
          const out = join(dir, 'dual.out');
          await downloadToFile(client, uri, out);
          expect(await readFile(out, 'utf8')).toBe('hello over coaps');
        } finally {
          await client.close();
        }
      }
      expect(dual.dtls!.stats.handshakesOk).toBe(2);
    } finally {
      await dual.close();
    }
  });

  it('serves extra transports given by the caller, and refuses to listen on nothing', async () => {
    await expect(startFileServer({ dir, coap: false, refreshMs: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const extra = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    const both = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0, transports: [extra] });
    try {
      expect(both.endpoints).toHaveLength(2);
      expect(both.dtls).toBeUndefined();
      const uri = `coap://127.0.0.1:${extra.address().port}/files/small.txt`;
      const client = await openClient(uri, { params: FAST });
      try {
        const out = join(dir, 'extra.out');
        await downloadToFile(client, uri, out);
        expect(await readFile(out, 'utf8')).toBe('hello over coaps');
      } finally {
        await client.close();
      }
    } finally {
      await both.close();
    }
  });
});
