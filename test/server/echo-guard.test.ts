import { describe, expect, it } from 'vitest';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { bufferSource } from '../../src/blockwise/source.js';
import { encodeMessage, decodeMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import { withEcho } from '../../src/messaging/echo.js';
import { echoGuard } from '../../src/server/echo-guard.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork, flush } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const data = Uint8Array.from({ length: 8000 }, (_, i) => i & 0xff);

function setup() {
  const net = new MemNetwork();
  const rt = new FakeRuntime(5);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  const src = bufferSource(data);
  const guard = echoGuard((req) => serveBlock2(req.message, src), { runtime: rt });
  server.handle(guard);
  return { net, rt, guard };
}

describe('Echo amplification guard (RFC 9175)', () => {
  it('answers a spoofable small GET for a large block with a small 4.01 + Echo', async () => {
    const { net, guard } = setup();
    const spoofed = net.endpoint('10.9.9.9', 1234);
    const req = encodeMessage({ type: MessageType.NON, code: Code.GET, messageId: 1, token: new Uint8Array([1]), options: pathOptions('/x'), payload: new Uint8Array() });
    spoofed.send(req, SERVER);
    await flush();
    const replies = net.log.filter((l) => l.from.port === SERVER.port);
    expect(replies).toHaveLength(1);
    const res = decodeMessage(replies[0]!.data);
    expect(res.code).toBe(Code.UNAUTHORIZED);
    expect(getOption(res, OptionNumber.ECHO)!.length).toBe(12);
    expect(replies[0]!.data.length).toBeLessThanOrEqual(3 * req.length);
    expect(guard.stats.challenged).toBe(1);
  });

  it('lets a client that repeats the Echo fetch everything, challenged only once', async () => {
    const { net, rt, guard } = setup();
    const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
    const request = withEcho((s, o) => client.request(SERVER, s, o));
    const { data: got } = await fetchAll(request, { runtime: rt, options: pathOptions('/x') });
    expect(got).toEqual(data);
    expect(guard.stats.challenged).toBe(1);
    expect(guard.stats.verified).toBe(1);
  });

  it('rejects an Echo made for another address or too old', async () => {
    const { net, rt, guard } = setup();
    const a = new CoapEndpoint(net.endpoint('10.0.0.3', 1), { runtime: rt });
    const first = await a.request(SERVER, { code: Code.GET, options: pathOptions('/x') });
    const echo = getOption(first, OptionNumber.ECHO)!;
    const b = new CoapEndpoint(net.endpoint('10.0.0.4', 1), { runtime: rt });
    const stolen = await b.request(SERVER, { code: Code.GET, options: [...pathOptions('/x'), { number: OptionNumber.ECHO, value: echo }] });
    expect(stolen.code).toBe(Code.UNAUTHORIZED);
    rt.advance(120_000);
    const late = await a.request(SERVER, { code: Code.GET, options: [...pathOptions('/x'), { number: OptionNumber.ECHO, value: echo }] });
    expect(late.code).toBe(Code.UNAUTHORIZED);
    expect(guard.stats.rejectedEcho).toBe(2);
  });

  it('challenges an Observe registration from an unverified address before the handler runs', async () => {
    const net = new MemNetwork();
    const rt = new FakeRuntime(5);
    const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
    let handled = 0;
    server.handle(echoGuard(() => (handled++, { code: Code.CONTENT }), { runtime: rt }));
    const c = new CoapEndpoint(net.endpoint('10.0.0.2', 1), { runtime: rt });
    const res = await c.request(SERVER, { code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array() }] });
    expect(res.code).toBe(Code.UNAUTHORIZED);
    expect(handled).toBe(0);
    const echo = getOption(res, OptionNumber.ECHO)!;
    const again = await c.request(SERVER, { code: Code.GET, options: [{ number: OptionNumber.OBSERVE, value: new Uint8Array() }, { number: OptionNumber.ECHO, value: echo }] });
    expect(again.code).toBe(Code.CONTENT);
    expect(handled).toBe(1);
  });

  it('passes small responses to unverified peers unchanged', async () => {
    const net = new MemNetwork();
    const rt = new FakeRuntime(5);
    const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
    server.handle(echoGuard(() => ({ code: Code.CHANGED }), { runtime: rt }));
    const c = new CoapEndpoint(net.endpoint('10.0.0.2', 1), { runtime: rt });
    expect((await c.request(SERVER, { code: Code.POST })).code).toBe(Code.CHANGED);
  });
});
