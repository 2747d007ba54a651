/**
 * Q-Block2 behind the server's address check (RFC 9175 §2.4, the default
 * gate of a server endpoint): blocks beyond the first of each request wait
 * until the client answered a CoAP ping. On a lossy path a lost ping must
 * not hold the transfer for ACK_TIMEOUT (2-3 s): the client's next request
 * draws another ping (messaging/address-check.ts). Fake clock, in-memory
 * network, no latency: every wait is a timer.
 */
import { describe, expect, it } from 'vitest';
import { endpointChannel, endpointSender, fetchQBlock2, verifiedGate } from '../../src/blockwise/qblock2-endpoint.js';
import { hasQBlock2, QBlock2Server } from '../../src/blockwise/qblock2-server.js';
import { bufferSource } from '../../src/blockwise/source.js';
import { decodeMessage } from '../../src/codec/message.js';
import { Code, MessageType } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { flush, MemNetwork } from '../../src/testing/mem-transport.js';
import { bytes } from './qblock2-harness.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const CLIENT = { address: '10.0.0.2', port: 40000 };

describe('Q-Block2 behind the address check', () => {
  it('the first ping lost: the next request pings again and the bursts flow at once, not one block per request', async () => {
    const net = new MemNetwork();
    const rt = new FakeRuntime(5);
    const body = bytes(32 * 1024, 9);
    const source = bufferSource(body);
    const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
    const q = new QBlock2Server({ runtime: rt, sender: endpointSender(server), gate: verifiedGate(server) });
    server.handle((req) => (hasQBlock2(req.message) ? q.handle(req.message, req.peer, source, req.size) : { code: Code.BAD_OPTION }));
    const client = new CoapEndpoint(net.endpoint(CLIENT.address, CLIENT.port), { runtime: rt });
    let pings = 0;
    net.filter = (from, _to, data) => {
      const m = decodeMessage(data);
      const ping = from.port === SERVER.port && m.type === MessageType.CON && m.code === Code.EMPTY;
      return !(ping && pings++ === 0); // the server's first ping is lost
    };
    const got = new Uint8Array(body.length);
    let doneAt: number | undefined;
    let requests = 0;
    void fetchQBlock2(endpointChannel(client, SERVER), { runtime: rt, options: pathOptions('/f'), onBlock: (b) => got.set(b.data, b.offset) }).then((o) => {
      expect(o.kind).toBe('complete');
      if (o.kind === 'complete') requests = o.stats.requests;
      doneAt = rt.now();
    });
    for (let t = 0; t < 60_000 && doneAt === undefined; t += 5) {
      rt.advance(5);
      await flush();
    }
    console.log(`Q-Block2 32 KiB, first ping lost: done at ${doneAt} ms (fake clock), ${requests} requests, ${pings} pings`);
    expect(got).toEqual(body);
    expect(pings).toBe(2);
    // Unverified, each request draws only its first block (32 requests for 32 blocks, until the
    // first ping's retransmission after ACK_TIMEOUT); verified, up to MAX_PAYLOADS each.
    expect(requests).toBeLessThan(10);
    q.close();
    await client.close();
    await server.close();
  });
});
