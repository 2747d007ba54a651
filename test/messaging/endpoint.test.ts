import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, type CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { CoapEndpoint, type RequestHandler } from '../../src/messaging/endpoint.js';
import { isCoapfwError } from '../../src/errors.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork, flush } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const CLIENT = { address: '10.0.0.2', port: 40000 };
const E = new Uint8Array(0);

function setup(handler?: RequestHandler, opts: { fixedRandom?: number; maxDedupEntries?: number; maxConcurrentRequests?: number } = {}) {
  const net = new MemNetwork();
  const rt = new FakeRuntime(7, opts.fixedRandom);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), {
    runtime: rt,
    maxDedupEntries: opts.maxDedupEntries,
    maxConcurrentRequests: opts.maxConcurrentRequests,
  });
  if (handler) server.handle(handler);
  const clientT = net.endpoint(CLIENT.address, CLIENT.port);
  const client = new CoapEndpoint(clientT, { runtime: rt });
  return { net, rt, server, client, clientT };
}

const ok: RequestHandler = () => ({ code: Code.CONTENT, payload: new TextEncoder().encode('hi') });
const sentBy = (net: MemNetwork, p: { port: number }) => net.log.filter((l) => l.from.port === p.port).map((l) => decodeMessage(l.data));

describe('message layer', () => {
  it('answers a CON request with a piggybacked ACK carrying the token', async () => {
    const { net, client } = setup(ok);
    const res = await client.request(SERVER, { code: Code.GET });
    expect(res.type).toBe(MessageType.ACK);
    expect(res.code).toBe(Code.CONTENT);
    expect(new TextDecoder().decode(res.payload)).toBe('hi');
    const [req] = sentBy(net, CLIENT);
    expect(req!.token.length).toBe(8);
    expect(res.token).toEqual(req!.token);
    expect(res.messageId).toBe(req!.messageId);
  });

  it('retransmits a CON with exponential back-off and gives up after MAX_RETRANSMIT (RFC 7252 §4.2)', async () => {
    const { net, rt, client } = setup(ok, { fixedRandom: 0 });
    net.filter = () => false; // total loss
    const times: number[] = [];
    const origPush = net.log.push.bind(net.log);
    net.log.push = (...items) => {
      times.push(rt.now());
      return origPush(...items);
    };
    const p = client.request(SERVER, { code: Code.GET });
    let err: unknown;
    p.catch((e) => (err = e));
    rt.advance(61_999);
    await flush();
    expect(err).toBeUndefined();
    expect(times).toEqual([0, 2000, 6000, 14000, 30000]);
    rt.advance(1);
    await flush();
    expect(isCoapfwError(err, 'TIMEOUT')).toBe(true);
  });

  it('uses a random initial timeout within [ACK_TIMEOUT, ACK_TIMEOUT*ACK_RANDOM_FACTOR]', async () => {
    const { net, rt, client } = setup(ok, { fixedRandom: 0.5 });
    net.filter = () => false;
    client.request(SERVER, { code: Code.GET }).catch(() => {});
    rt.advance(2499);
    expect(net.log.length).toBe(1);
    rt.advance(1);
    expect(net.log.length).toBe(2);
  });

  it('answers a duplicate CON with the same response without calling the handler again (§4.5)', async () => {
    let calls = 0;
    const { net, server, clientT } = setup(() => {
      calls++;
      return { code: Code.CONTENT, payload: new Uint8Array([calls]) };
    });
    const req = encodeMessage({ type: MessageType.CON, code: Code.GET, messageId: 77, token: new Uint8Array([1, 2]), options: [], payload: E });
    clientT.send(req, SERVER);
    await flush();
    clientT.send(req, SERVER);
    await flush();
    const replies = sentBy(net, SERVER);
    expect(calls).toBe(1);
    expect(replies).toHaveLength(2);
    expect(replies[1]).toEqual(replies[0]);
    expect(server.stats.duplicates).toBe(1);
  });

  it('keeps the newest 256 GET responses for duplicates; an older GET is processed again, a POST or an Observe GET never (§4.5)', async () => {
    const calls = new Map<number, number>();
    const { net, server, clientT } = setup((req) => {
      calls.set(req.message.messageId, (calls.get(req.message.messageId) ?? 0) + 1);
      return { code: req.message.code === Code.POST ? Code.CHANGED : Code.CONTENT, payload: new Uint8Array([calls.get(req.message.messageId)!]) };
    });
    const con = (mid: number, code: number, options: CoapMessage['options'] = []) => encodeMessage({ type: MessageType.CON, code, messageId: mid, token: new Uint8Array([mid & 0xff]), options, payload: E });
    const observe = [{ number: OptionNumber.OBSERVE, value: new Uint8Array([0]) }];
    clientT.send(con(1, Code.GET), SERVER);
    clientT.send(con(2, Code.POST), SERVER);
    clientT.send(con(3, Code.GET, observe), SERVER);
    for (let mid = 10; mid < 10 + 256; mid++) clientT.send(con(mid, Code.GET), SERVER);
    await flush();
    const before = sentBy(net, SERVER);
    const answer = (mid: number) => before.find((m) => m.messageId === mid)!;
    for (const mid of [1, 2, 3, 10 + 255]) clientT.send(mid === 2 ? con(2, Code.POST) : mid === 3 ? con(3, Code.GET, observe) : con(mid, Code.GET), SERVER);
    await flush();
    const again = sentBy(net, SERVER).slice(before.length);
    // GET 1's response was let go 256 GETs later: processed again (its handler's second answer).
    expect(calls.get(1)).toBe(2);
    expect(again[0]).toMatchObject({ messageId: 1, type: MessageType.ACK, code: Code.CONTENT });
    expect([...again[0]!.payload]).toEqual([2]);
    // The POST and the Observe GET are answered with their first response, their handlers not called again.
    expect(calls.get(2)).toBe(1);
    expect(calls.get(3)).toBe(1);
    expect(again[1]).toEqual(answer(2));
    expect(again[2]).toEqual(answer(3));
    // The newest GET still has its response.
    expect(calls.get(10 + 255)).toBe(1);
    expect(again[3]).toEqual(answer(10 + 255));
    expect(server.stats.duplicates).toBe(4);
  });

  it('bounds the duplicate cache in entries and in lifetime', async () => {
    const { rt, server, clientT } = setup(ok, { maxDedupEntries: 100 });
    for (let mid = 0; mid < 1000; mid++) {
      clientT.send(encodeMessage({ type: MessageType.CON, code: Code.GET, messageId: mid, token: E, options: [], payload: E }), SERVER);
    }
    await flush();
    expect(server.dedupSize).toBe(100);
    rt.advance(247_000);
    clientT.send(encodeMessage({ type: MessageType.CON, code: Code.GET, messageId: 5000, token: E, options: [], payload: E }), SERVER);
    await flush();
    expect(server.dedupSize).toBe(1);
  });

  it('answers CoAP ping (empty CON) with RST, and ping() resolves on it', async () => {
    const { net, client } = setup(ok);
    await client.ping(SERVER);
    const [rst] = sentBy(net, SERVER);
    expect(rst!.type).toBe(MessageType.RST);
    expect(rst!.code).toBe(Code.EMPTY);
  });

  it('rejects a malformed CON with RST and silently drops other garbage', async () => {
    const { net, server, clientT } = setup(ok);
    // Version 1, CON, TKL 9 (invalid), MID 0x1234.
    clientT.send(new Uint8Array([0x49, 0x01, 0x12, 0x34]), SERVER);
    clientT.send(new Uint8Array([0xff, 0xff]), SERVER);
    await flush();
    const out = sentBy(net, SERVER);
    expect(out).toHaveLength(1);
    expect(out[0]!.type).toBe(MessageType.RST);
    expect(out[0]!.messageId).toBe(0x1234);
    expect(server.stats.malformed).toBe(2);
  });

  it('answers an unexpected CON response with RST (§5.3.2)', async () => {
    const { net, clientT } = setup();
    // The server endpoint has no request pending with this token.
    clientT.send(encodeMessage({ type: MessageType.CON, code: Code.CONTENT, messageId: 9, token: new Uint8Array([9]), options: [], payload: E }), SERVER);
    await flush();
    const out = sentBy(net, SERVER);
    expect(out.map((m) => [m.type, m.messageId])).toEqual([[MessageType.RST, 9]]);
  });

  it('ACKs a retransmitted CON response again, and RSTs a new one for a finished token', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { net, rt, client } = setup(async () => {
      await gate;
      return { code: Code.CONTENT };
    });
    const p = client.request(SERVER, { code: Code.GET });
    await flush();
    rt.advance(1000);
    await flush();
    release();
    await p;
    await flush();
    const sep = sentBy(net, SERVER).find((m) => m.type === MessageType.CON)!;
    const before = net.log.length;
    // The same CON again (its ACK was lost): ACK again.
    net.nodes.get(`${SERVER.address}:${SERVER.port}`)!.send(encodeMessage(sep), CLIENT);
    // A new notification-like CON with the same token but a new MID: nobody wants it, RST.
    net.nodes.get(`${SERVER.address}:${SERVER.port}`)!.send(encodeMessage({ ...sep, messageId: (sep.messageId + 1) & 0xffff }), CLIENT);
    await flush();
    const replies = net.log.slice(before).filter((l) => l.from.port === CLIENT.port).map((l) => decodeMessage(l.data));
    expect(replies.map((m) => [m.type, m.messageId])).toEqual([
      [MessageType.ACK, sep.messageId],
      [MessageType.RST, (sep.messageId + 1) & 0xffff],
    ]);
  });

  it('sends an empty ACK and then a separate CON response when the handler is slow (§5.2.2)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const { net, rt, client } = setup(async () => {
      await gate;
      return { code: Code.CONTENT, payload: new Uint8Array([42]) };
    });
    const p = client.request(SERVER, { code: Code.GET });
    await flush();
    rt.advance(1000);
    await flush();
    release();
    const res = await p;
    await flush();
    expect(res.type).toBe(MessageType.CON);
    expect(res.payload).toEqual(new Uint8Array([42]));
    const fromServer = sentBy(net, SERVER).map((m) => [m.type, m.code]);
    expect(fromServer).toEqual([
      [MessageType.ACK, Code.EMPTY],
      [MessageType.CON, Code.CONTENT],
    ]);
    const fromClient = sentBy(net, CLIENT).map((m) => [m.type, m.code]);
    expect(fromClient).toEqual([
      [MessageType.CON, Code.GET],
      [MessageType.ACK, Code.EMPTY],
    ]);
  });

  it('keeps NSTART=1: a second request to the same peer waits for the first', async () => {
    const resolvers: Array<() => void> = [];
    const { net, client } = setup(
      () =>
        new Promise((r) => resolvers.push(() => r({ code: Code.CONTENT }))),
    );
    const a = client.request(SERVER, { code: Code.GET });
    const b = client.request(SERVER, { code: Code.GET });
    await flush();
    expect(sentBy(net, CLIENT)).toHaveLength(1);
    resolvers[0]!();
    await a;
    await flush();
    expect(sentBy(net, CLIENT)).toHaveLength(2);
    resolvers[1]!();
    await b;
  });

  it('answers 5.03 beyond the concurrent-request cap', async () => {
    const { client } = setup(() => new Promise<never>(() => {}), { maxConcurrentRequests: 0 });
    const res = await client.request(SERVER, { code: Code.GET });
    expect(res.code).toBe(Code.SERVICE_UNAVAILABLE);
  });

  it('rejects with ABORTED when the signal aborts, and stops retransmitting', async () => {
    const { net, rt, client } = setup();
    const ctl = new AbortController();
    const p = client.request({ address: '10.0.0.9', port: 1 }, { code: Code.GET }, { signal: ctl.signal });
    ctl.abort();
    await expect(p).rejects.toMatchObject({ code: 'ABORTED' });
    rt.advance(100_000);
    expect(net.log).toHaveLength(1);
    expect(rt.pendingTimers).toBe(0);
  });

  it('delivers a NON request response and ignores NON duplicates', async () => {
    let calls = 0;
    const { net, client, clientT } = setup(() => {
      calls++;
      return { code: Code.CONTENT };
    });
    const res = await client.request(SERVER, { code: Code.GET, confirmable: false });
    expect(res.type).toBe(MessageType.NON);
    const req = net.log.find((l) => l.from.port === CLIENT.port)!.data;
    clientT.send(req, SERVER); // the same NON again (same message ID)
    await flush();
    expect(calls).toBe(1);
    expect(sentBy(net, SERVER)).toHaveLength(1);
  });

  it('rejects queued and outstanding requests on close, and starts no queued one', async () => {
    const { net, client } = setup(() => new Promise<never>(() => {}));
    const ps = [1, 2, 3].map(() => client.request(SERVER, { code: Code.GET }));
    await flush();
    await client.close();
    for (const p of ps) await expect(p).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED' });
    expect(sentBy(net, CLIENT)).toHaveLength(1);
  });

  it('answers 5.00 when a handler returns a response that cannot be encoded', async () => {
    const { client } = setup(() => ({ code: Code.CONTENT, options: [{ number: OptionNumber.ETAG, value: new Uint8Array(70_000) }] }));
    expect((await client.request(SERVER, { code: Code.GET })).code).toBe(Code.INTERNAL_SERVER_ERROR);
  });

  it('fails a request whose RST comes back', async () => {
    const { net, client } = setup();
    const srv = net.nodes.get(`${SERVER.address}:${SERVER.port}`)!;
    srv.onMessage((data, peer) => {
      const m: CoapMessage = decodeMessage(data);
      srv.send(encodeMessage({ type: MessageType.RST, code: Code.EMPTY, messageId: m.messageId, token: E, options: [], payload: E }), peer);
    });
    await expect(client.request(SERVER, { code: Code.GET })).rejects.toMatchObject({ code: 'RESET' });
  });
});
