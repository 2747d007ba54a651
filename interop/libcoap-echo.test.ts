/**
 * RFC 9175 Echo amplification protection against a real client: with the
 * guard on, a spoofable one-datagram GET draws only a small 4.01, and
 * libcoap's coap-client repeats its request with the Echo value and gets the
 * whole file.
 */
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../src/codec/numbers.js';
import { getOption, pathOptions } from '../src/codec/options.js';
import { startFileServer, type FileServer } from '../src/server/serve.js';
import { describeWithBinaries, libcoapMissing, makeFixtureDir, fixtureName, run, sha256File, COAP_CLIENT } from './helpers.js';

describeWithBinaries('Echo guard with libcoap', libcoapMissing(), () => {
  let fixtures: Awaited<ReturnType<typeof makeFixtureDir>>;
  let server: FileServer;
  const size = 100_000;

  beforeAll(async () => {
    fixtures = await makeFixtureDir([size], 'coapfw-echo-');
    server = await startFileServer({ dir: fixtures.dir, host: '127.0.0.1', port: 0, refreshMs: 0, echo: true });
  });
  afterAll(async () => {
    await server?.close();
    await fixtures?.remove();
  });

  it('answers a lone small GET for a 1 KiB block with a small 4.01 carrying Echo', async () => {
    const sock = createSocket('udp4');
    try {
      const req = encodeMessage({ type: MessageType.NON, code: Code.GET, messageId: 7, token: new Uint8Array([1, 2]), options: pathOptions(`/files/${fixtureName(size)}`), payload: new Uint8Array() });
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('no reply')), 3000);
        sock.once('message', (m) => {
          clearTimeout(t);
          resolve(m);
        });
        sock.send(req, server.address().port, '127.0.0.1');
      });
      const res = decodeMessage(reply);
      expect(res.code).toBe(Code.UNAUTHORIZED);
      expect(getOption(res, OptionNumber.ECHO)).toBeDefined();
      expect(reply.length).toBeLessThanOrEqual(3 * req.length);
    } finally {
      sock.close();
    }
  });

  it('lets coap-client fetch the whole file by repeating the Echo', async () => {
    const out = join(tmpdir(), `coapfw-echo-${process.pid}.bin`);
    await run(COAP_CLIENT, ['-m', 'get', '-b', '1024', `coap://127.0.0.1:${server.address().port}/files/${fixtureName(size)}`, '-o', out], 20_000);
    expect(await sha256File(out)).toBe(fixtures.hashes.get(size));
  });
});
