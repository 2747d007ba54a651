/**
 * `coapfw get coaps://...` and `coapfw serve --psk-file` argument handling,
 * in-process against a file server with a DTLS listener.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureIo } from '../helpers/cli-io.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { IDENTITY, KEY } from './helpers.js';


const TEXT_ID = 'libcoap-style';
const TEXT_KEY = 'secretPSK';
let dir: string;
let server: FileServer;
let base: string;
const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-coaps-cli-'));
  await writeFile(join(dir, 'fw.bin'), data);
  const psk = PskStore.parse(`# test keys\n${IDENTITY} ${Buffer.from(KEY).toString('hex')}\n${TEXT_ID} ${Buffer.from(TEXT_KEY).toString('hex')}\n`);
  server = await startFileServer({ dir, coap: false, refreshMs: 0, secure: { psk, host: '127.0.0.1', port: 0 } });
  base = `coaps://127.0.0.1:${server.dtls!.address().port}`;
});
afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('coapfw get coaps://', () => {
  it('fetches with a hex key (hex: prefix)', async () => {
    const c = captureIo();
    const out = join(dir, 'a.bin');
    const key = `hex:${Buffer.from(KEY).toString('hex')}`;
    const code = await main(['get', `${base}/files/fw.bin`, '-o', out, '--psk-identity', IDENTITY, '--psk-key', key], c.io);
    expect(c.err()).toBe(`${out}: 3000 bytes in 3 blocks (Q-Block2)\n`);
    expect(code).toBe(0);
    expect(new Uint8Array(await readFile(out))).toEqual(data);
  });

  it('fetches with a text key, as libcoap -k takes it', async () => {
    const c = captureIo();
    const out = join(dir, 'b.bin');
    const code = await main(['get', `${base}/files/fw.bin`, '-o', out, '--psk-identity', TEXT_ID, '--psk-key', TEXT_KEY], c.io);
    expect(code).toBe(0);
    expect(new Uint8Array(await readFile(out))).toEqual(data);
  });

  it('reports a wrong key in one line with DTLS_HANDSHAKE_FAILED', async () => {
    const c = captureIo();
    const code = await main(['get', `${base}/files/fw.bin`, '-o', join(dir, 'c.bin'), '--psk-identity', IDENTITY, '--psk-key', 'wrong'], c.io);
    expect(code).toBe(1);
    expect(c.err().trim().split('\n')).toHaveLength(1);
    expect(c.err()).toMatch(/wrong PSK.*\[DTLS_HANDSHAKE_FAILED\]/);
  });

  it('reports an unknown identity in one line', async () => {
    const c = captureIo();
    const code = await main(['get', `${base}/files/fw.bin`, '-o', join(dir, 'd.bin'), '--psk-identity', 'nobody', '--psk-key', TEXT_KEY, '--dtls-retries', '0'], c.io);
    expect(code).toBe(1);
    expect(c.err().trim().split('\n')).toHaveLength(1);
    expect(c.err()).toMatch(/\[DTLS_HANDSHAKE_FAILED\]/);
  });

  it('reports a server that does not answer in one line', async () => {
    const silent = await UdpTransport.bind(); // bound, never answers
    try {
      const c = captureIo();
      const uri = `coaps://127.0.0.1:${silent.address().port}/files/fw.bin`;
      const code = await main(['get', uri, '-o', join(dir, 'e.bin'), '--psk-identity', IDENTITY, '--psk-key', 'k', '--dtls-retries', '0'], c.io);
      expect(code).toBe(1);
      expect(c.err().trim().split('\n')).toHaveLength(1);
      expect(c.err()).toMatch(/no handshake with 127\.0\.0\.1:\d+ after 1 attempts.*\[DTLS_HANDSHAKE_FAILED\]/);
    } finally {
      await silent.close();
    }
  });

  it('refuses missing or misplaced PSK options as usage errors', async () => {
    for (const args of [
      ['get', `${base}/files/fw.bin`],
      ['get', `${base}/files/fw.bin`, '--psk-identity', IDENTITY],
      ['get', `${base}/files/fw.bin`, '--psk-identity', IDENTITY, '--psk-key', '0x123'],
      ['get', 'coap://127.0.0.1/files/fw.bin', '--psk-identity', IDENTITY, '--psk-key', 'k'],
    ]) {
      const c = captureIo();
      expect(await main(args, c.io)).toBe(2);
      expect(c.err()).toMatch(/psk|coaps/i);
    }
  });
});

describe('coapfw serve --psk-file', () => {
  it('documents the PSK file format in --help', async () => {
    const c = captureIo();
    expect(await main(['serve', '--help'], c.io)).toBe(0);
    expect(c.out()).toMatch(/--psk-file FILE/);
    expect(c.out()).toMatch(/identity hexkey/);
    expect(c.out()).toMatch(/--dtls-port P .*5684/);
    expect(c.out()).toMatch(/--no-coap/);
  });

  it('refuses --no-coap and --dtls-port without --psk-file', async () => {
    for (const args of [['serve', dir, '--no-coap'], ['serve', dir, '--dtls-port', '5684']]) {
      const c = captureIo();
      expect(await main(args, c.io)).toBe(2);
      expect(c.err()).toMatch(/needs --psk-file/);
    }
  });

  it('refuses a malformed PSK file with a labelled one-line error, before binding anything', async () => {
    const bad = join(dir, 'bad.psk');
    await writeFile(bad, `${IDENTITY} 0011\nsecond-line not-hex\n`);
    const c = captureIo();
    expect(await main(['serve', dir, '--psk-file', bad, '--no-coap', '--dtls-port', '0'], c.io)).toBe(1);
    expect(c.err()).toMatch(/bad\.psk:2: key must be 1\.\.64 bytes of hex \[INVALID_ARGUMENT\]/);
  });
});
