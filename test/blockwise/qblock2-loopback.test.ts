/**
 * Our Q-Block2 client and server on real endpoints over UDP loopback, with
 * 10 % and 20 % loss each way through the impaired transport (seeded).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { endpointChannel, endpointSender, fetchQBlock2 } from '../../src/blockwise/qblock2-endpoint.js';
import { hasQBlock2, QBlock2Server } from '../../src/blockwise/qblock2-server.js';
import { bufferSource } from '../../src/blockwise/source.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { pathOptions } from '../../src/codec/options.js';
import { Code } from '../../src/codec/numbers.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { ImpairedTransport } from '../../src/transport/impaired.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { bytes } from './qblock2-harness.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function pair(loss: number, qblock = true) {
  const body = bytes(200 * 1024, 3);
  const source = bufferSource(body);
  const server = new CoapEndpoint(new ImpairedTransport(await UdpTransport.bind(), { loss, seed: 7 }), { runtime: systemRuntime });
  const q = new QBlock2Server({ runtime: systemRuntime, sender: endpointSender(server) });
  server.handle((req) => (!hasQBlock2(req.message) ? serveBlock2(req.message, source) : qblock ? q.handle(req.message, req.peer, source, req.size) : { code: Code.BAD_OPTION }));
  const client = new CoapEndpoint(new ImpairedTransport(await UdpTransport.bind(), { loss, seed: 8 }), { runtime: systemRuntime, params: { ackTimeoutMs: 200 } });
  closers.push(async () => {
    q.close();
    await client.close();
    await server.close();
  });
  return { body, server, client, q };
}

describe('Q-Block2 over loopback UDP through the impaired transport', () => {
  for (const loss of [0.1, 0.2]) {
    it(`fetches 200 KiB with the right bytes at ${loss * 100} % loss each way`, async () => {
      const { body, server, client } = await pair(loss);
      const got = new Uint8Array(body.length);
      const outcome = await fetchQBlock2(endpointChannel(client, server.address()), { runtime: systemRuntime, options: pathOptions('/f'), onBlock: (b) => got.set(b.data, b.offset) });
      expect(outcome.kind).toBe('complete');
      expect(got).toEqual(body);
    }, 30_000);
  }

  it('falls back when the server answers 4.02 to Q-Block2', async () => {
    const { server, client } = await pair(0, false);
    const outcome = await fetchQBlock2(endpointChannel(client, server.address()), { runtime: systemRuntime, options: pathOptions('/f'), onBlock: () => undefined });
    expect(outcome).toMatchObject({ kind: 'fallback', reason: 'bad-option' });
  });
});
