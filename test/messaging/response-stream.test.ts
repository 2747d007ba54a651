import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, type CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType } from '../../src/codec/numbers.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { flush, MemNetwork } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };

describe('CoapEndpoint.openStream', () => {
  it('hands every response carrying any of the stream tokens to the listener, ACKs CON ones, and stops after close', async () => {
    const net = new MemNetwork();
    const server = net.endpoint(SERVER.address, SERVER.port);
    const ep = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: new FakeRuntime() });
    const got: CoapMessage[] = [];
    const stream = ep.openStream(SERVER, { onResponse: (m) => got.push(m) });
    const t1 = stream.send({ code: Code.GET, confirmable: false });
    const t2 = stream.send({ code: Code.GET, confirmable: false });
    await flush();
    expect(net.log.filter((e) => e.to.port === 5683)).toHaveLength(2);
    const res = (token: Uint8Array, type: number, mid: number): Uint8Array =>
      encodeMessage({ type: type as CoapMessage['type'], code: Code.CONTENT, messageId: mid, token, options: [], payload: Uint8Array.of(mid) });
    server.send(res(t1, MessageType.NON, 1), { address: '10.0.0.2', port: 40000 });
    server.send(res(t1, MessageType.NON, 2), { address: '10.0.0.2', port: 40000 });
    server.send(res(t2, MessageType.CON, 3), { address: '10.0.0.2', port: 40000 });
    await flush();
    expect(got.map((m) => m.payload[0])).toEqual([1, 2, 3]);
    const ack = net.log.filter((e) => e.to.port === 5683).map((e) => decodeMessage(e.data)).find((m) => m.type === MessageType.ACK);
    expect(ack?.messageId).toBe(3);
    stream.close();
    server.send(res(t1, MessageType.NON, 4), { address: '10.0.0.2', port: 40000 });
    await flush();
    expect(got).toHaveLength(3);
    expect(() => stream.send({ code: Code.GET })).toThrow(expect.objectContaining({ code: 'TRANSPORT_CLOSED' }));
    await ep.close();
  });

  it('reports a CON that is never acknowledged as TIMEOUT', async () => {
    const rt = new FakeRuntime(1, 0);
    const net = new MemNetwork();
    net.filter = () => false;
    const ep = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt, params: { maxRetransmit: 1 } });
    const errors: string[] = [];
    ep.openStream(SERVER, { onResponse: () => undefined, onError: (e) => errors.push(e.code) }).send({ code: Code.GET });
    rt.advance(60_000);
    expect(errors).toEqual(['TIMEOUT']);
    await ep.close();
  });

  it('resend: the same token again (an Observe re-registration, RFC 7641 §3.3.1), only for a token the stream holds', async () => {
    const net = new MemNetwork();
    net.endpoint(SERVER.address, SERVER.port);
    const ep = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: new FakeRuntime() });
    const stream = ep.openStream(SERVER, { onResponse: () => undefined });
    const other = ep.openStream(SERVER, { onResponse: () => undefined });
    const token = stream.send({ code: Code.GET, confirmable: false });
    stream.resend({ code: Code.GET, confirmable: false }, token);
    await flush();
    const sent = net.log.filter((e) => e.to.port === 5683).map((e) => decodeMessage(e.data));
    expect(sent).toHaveLength(2);
    expect(sent[1]!.token).toEqual(token);
    expect(sent[1]!.messageId).not.toBe(sent[0]!.messageId);
    expect(() => other.resend({ code: Code.GET }, token)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    stream.close();
    expect(() => stream.resend({ code: Code.GET }, token)).toThrow(expect.objectContaining({ code: 'TRANSPORT_CLOSED' }));
    await ep.close();
  });
});
