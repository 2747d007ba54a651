/**
 * RFC 7252 and RFC 7967 details of the request path (issue 8, item 8):
 * a NON with an unrecognised critical option is rejected silently (§5.4.1),
 * Proxy-Uri/Proxy-Scheme to a server that is no proxy is 5.05 (§5.10.2), and
 * No-Response (RFC 7967 §2.1) suppresses the response classes asked for.
 */
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, type CoapMessage, type CoapOption } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { encodeUint, pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint, type RequestHandler, type ResponseSpec } from '../../src/messaging/endpoint.js';
import { routeRequests } from '../../src/server/router.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork, flush } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const CLIENT = { address: '10.0.0.2', port: 40000 };
const E = new Uint8Array(0);
const resource = { methods: new Set<number>([Code.GET]), handle: (): ResponseSpec => ({ code: Code.CONTENT, payload: new TextEncoder().encode('x') }) };
const router = routeRequests((path) => (path[0] === 'x' ? resource : undefined));

function setup(handler: RequestHandler) {
  const net = new MemNetwork();
  const rt = new FakeRuntime(3);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  server.handle(handler);
  const raw = net.endpoint(CLIENT.address, CLIENT.port);
  const got: CoapMessage[] = [];
  raw.onMessage((d) => got.push(decodeMessage(d)));
  const send = async (type: number, options: CoapOption[], mid = 1): Promise<CoapMessage[]> => {
    got.length = 0;
    await raw.send(encodeMessage({ type: type as 0, code: Code.GET, messageId: mid, token: Uint8Array.of(9), options, payload: E }), SERVER);
    await flush();
    return [...got];
  };
  return { send, rt, got };
}

describe('RFC 7252 §5.4.1: unrecognised critical options', () => {
  it('a NON request carrying one is rejected silently, a CON one gets 4.02', async () => {
    const { send } = setup(router);
    const opts = [...pathOptions('/x'), { number: OptionNumber.IF_MATCH, value: Uint8Array.of(1) }];
    expect(await send(MessageType.NON, opts)).toEqual([]);
    const con = await send(MessageType.CON, opts, 2);
    expect(con).toHaveLength(1);
    expect(con[0]!.code).toBe(Code.BAD_OPTION);
  });

  it('a NON with a repeated non-repeatable critical option (treated as unrecognised, §5.4.5) is rejected silently', async () => {
    const { send } = setup(router);
    const b = { number: OptionNumber.BLOCK2, value: Uint8Array.of(0x06) };
    expect(await send(MessageType.NON, [...pathOptions('/x'), b, b])).toEqual([]);
  });
});

describe('RFC 7252 §5.10.2: Proxy-Uri and Proxy-Scheme without a proxy', () => {
  it('answers 5.05 Proxying Not Supported, for CON and NON', async () => {
    const { send } = setup(router);
    const proxyUri = { number: OptionNumber.PROXY_URI, value: new TextEncoder().encode('coap://example.net/x') };
    const proxyScheme = { number: OptionNumber.PROXY_SCHEME, value: new TextEncoder().encode('coap') };
    for (const [i, opts] of [[proxyUri], [...pathOptions('/x'), proxyScheme]].entries()) {
      const con = await send(MessageType.CON, opts, 10 + i);
      expect(con.map((m) => m.code)).toEqual([Code.PROXYING_NOT_SUPPORTED]);
      const non = await send(MessageType.NON, opts, 20 + i);
      expect(non.map((m) => m.code)).toEqual([Code.PROXYING_NOT_SUPPORTED]);
    }
  });
});

describe('RFC 7967 No-Response', () => {
  const noResponse = (v: number): CoapOption => ({ number: OptionNumber.NO_RESPONSE, value: encodeUint(v) });

  it('suppresses the classes asked for on NON requests and sends the others', async () => {
    const { send } = setup(router);
    // 2: not interested in 2.xx; 8: in 4.xx; 16: in 5.xx; 26 all of them (§2.1).
    expect(await send(MessageType.NON, [...pathOptions('/x'), noResponse(2)], 1)).toEqual([]);
    expect((await send(MessageType.NON, [...pathOptions('/x'), noResponse(8)], 2)).map((m) => m.code)).toEqual([Code.CONTENT]);
    expect(await send(MessageType.NON, [...pathOptions('/nothing'), noResponse(8)], 3)).toEqual([]);
    expect((await send(MessageType.NON, [...pathOptions('/nothing'), noResponse(2)], 4)).map((m) => m.code)).toEqual([Code.NOT_FOUND]);
    expect(await send(MessageType.NON, [...pathOptions('/x'), noResponse(26)], 5)).toEqual([]);
    // 0: interested in everything.
    expect((await send(MessageType.NON, [...pathOptions('/x'), noResponse(0)], 6)).map((m) => m.code)).toEqual([Code.CONTENT]);
  });

  it('a suppressed response to a CON is an empty ACK', async () => {
    const { send } = setup(router);
    const got = await send(MessageType.CON, [...pathOptions('/x'), noResponse(2)], 7);
    expect(got).toHaveLength(1);
    expect(got[0]!.type).toBe(MessageType.ACK);
    expect(got[0]!.code).toBe(Code.EMPTY);
    expect(got[0]!.messageId).toBe(7);
  });

  it('a suppressed separate response sends nothing after the empty ACK', async () => {
    let release: (s: ResponseSpec) => void = () => {};
    const { send, rt, got } = setup(() => new Promise<ResponseSpec>((r) => (release = r)));
    await send(MessageType.CON, [...pathOptions('/x'), noResponse(16)], 8);
    rt.advance(1000); // the handler is slow: the endpoint sends its empty ACK (§5.2.2)
    await flush();
    expect(got.map((m) => [m.type, m.code])).toEqual([[MessageType.ACK, Code.EMPTY]]);
    release({ code: Code.SERVICE_UNAVAILABLE });
    await flush();
    rt.advance(100_000);
    await flush();
    // The 5.03 is suppressed, so nothing follows the empty ACK (and nothing is retransmitted).
    expect(got).toHaveLength(1);
  });
});
