/**
 * Sending a body block-wise (block1-send.ts) against our own receivers over
 * an in-memory network: Request-Tag and Size1 on the wire, a server asking
 * for smaller blocks, a server that lost the body (4.08), one that is busy
 * (5.03 + Max-Age) or refuses the size (4.13).
 */
import { describe, expect, it } from 'vitest';
import { sendBlock1 } from '../../src/blockwise/block1-send.js';
import { Block1Receiver, withBlock1 } from '../../src/blockwise/block1.js';
import { decodeBlock } from '../../src/codec/block.js';
import { decodeMessage } from '../../src/codec/message.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { decodeUint, encodeUint, getOption, pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint, type CoapRequest, type RequestHandler, type ResponseSpec } from '../../src/messaging/endpoint.js';
import { isCoapfwError } from '../../src/errors.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';
import { drive } from '../helpers/drive.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const body = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 29 + 3) & 255);

function setup(handler: RequestHandler) {
  const net = new MemNetwork();
  const rt = new FakeRuntime(5);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  server.handle(handler);
  const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
  const request = (spec: Parameters<CoapEndpoint['request']>[1], o: Parameters<CoapEndpoint['request']>[2]) => client.request(SERVER, spec, o);
  const sent = () => net.log.filter((l) => l.to.port === SERVER.port).map((l) => decodeMessage(l.data));
  return { rt, request, sent };
}

/** A Block1 receiver in front of a handler that keeps the bodies it got. */
function receiving(options: Partial<ConstructorParameters<typeof Block1Receiver>[0]> = {}) {
  const bodies: Uint8Array[] = [];
  const rt = new FakeRuntime(1);
  const handler = withBlock1((req: CoapRequest): ResponseSpec => {
    bodies.push(req.message.payload);
    return { code: Code.CHANGED };
  }, new Block1Receiver({ runtime: rt, ...options }));
  return { bodies, handler };
}

describe('sendBlock1', () => {
  it('sends a large body in blocks, one Request-Tag for all, Size1 on the first, and returns the final response', async () => {
    const r = receiving();
    const { rt, request, sent } = setup(r.handler);
    const data = body(3000);
    const progress: number[] = [];
    const res = await drive(rt, sendBlock1(request, { code: Code.POST, options: pathOptions('/up'), payload: data }, { runtime: rt, szx: 6, onProgress: (p) => progress.push(p.sent) }));
    expect(res.code).toBe(Code.CHANGED);
    expect(r.bodies).toEqual([data]);
    const msgs = sent();
    expect(msgs.map((m) => decodeBlock(getOption(m, OptionNumber.BLOCK1)!))).toEqual([
      { num: 0, more: true, szx: 6 },
      { num: 1, more: true, szx: 6 },
      { num: 2, more: false, szx: 6 },
    ]);
    const tags = msgs.map((m) => Buffer.from(getOption(m, OptionNumber.REQUEST_TAG)!).toString('hex'));
    expect(new Set(tags).size).toBe(1);
    expect(tags[0]).toHaveLength(8);
    expect(msgs.map((m) => getOption(m, OptionNumber.SIZE1) && decodeUint(getOption(m, OptionNumber.SIZE1)!))).toEqual([3000, undefined, undefined]);
    expect(progress).toEqual([1024, 2048]);
  });

  it('a body that fits one block goes as one plain request', async () => {
    const r = receiving();
    const { rt, request, sent } = setup(r.handler);
    await drive(rt, sendBlock1(request, { code: Code.PUT, options: pathOptions('/up'), payload: body(100) }, { runtime: rt }));
    expect(sent()).toHaveLength(1);
    expect(getOption(sent()[0]!, OptionNumber.BLOCK1)).toBeUndefined();
    expect(r.bodies[0]).toEqual(body(100));
  });

  it('continues at the smaller size a 2.31 asks for (RFC 7959 §2.3)', async () => {
    const r = receiving({ preferredSzx: 4 });
    const { rt, request, sent } = setup(r.handler);
    const data = body(2000);
    await drive(rt, sendBlock1(request, { code: Code.POST, options: pathOptions('/up'), payload: data }, { runtime: rt, szx: 6 }));
    expect(r.bodies).toEqual([data]);
    const blocks = sent().map((m) => decodeBlock(getOption(m, OptionNumber.BLOCK1)!));
    expect(blocks[0]).toEqual({ num: 0, more: true, szx: 6 });
    expect(blocks[1]).toEqual({ num: 4, more: true, szx: 4 }); // 1024 bytes in = NUM 4 of 256
    expect(blocks.at(-1)).toEqual({ num: 7, more: false, szx: 4 });
  });

  it('starts over with a new Request-Tag when the server lost the body (4.08), and gives up after the restarts', async () => {
    let lose = 1;
    const r = receiving();
    const { rt, request, sent } = setup((req) => {
      const b = getOption(req.message, OptionNumber.BLOCK1);
      if (b !== undefined && decodeBlock(b).num === 1 && lose-- > 0) return { code: Code.REQUEST_ENTITY_INCOMPLETE };
      return r.handler(req);
    });
    const data = body(2500);
    const res = await drive(rt, sendBlock1(request, { code: Code.POST, options: pathOptions('/up'), payload: data }, { runtime: rt, szx: 6 }));
    expect(res.code).toBe(Code.CHANGED);
    expect(r.bodies).toEqual([data]);
    const tags = new Set(sent().map((m) => Buffer.from(getOption(m, OptionNumber.REQUEST_TAG)!).toString('hex')));
    expect(tags.size).toBe(2);
    const always = setup(() => ({ code: Code.REQUEST_ENTITY_INCOMPLETE }));
    const lost = await drive(always.rt, sendBlock1(always.request, { code: Code.POST, options: pathOptions('/up'), payload: data }, { runtime: always.rt, restarts: 1 }));
    expect(lost.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(always.sent()).toHaveLength(2);
  });

  it('waits out a 5.03 with Max-Age, then sends the same block again', async () => {
    let busy = 1;
    const r = receiving();
    const { rt, request, sent } = setup((req) => {
      if (busy-- > 0) return { code: Code.SERVICE_UNAVAILABLE, options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(2) }] };
      return r.handler(req);
    });
    const data = body(1500);
    const started = rt.now();
    await drive(rt, sendBlock1(request, { code: Code.PUT, options: pathOptions('/up'), payload: data }, { runtime: rt }));
    expect(r.bodies).toEqual([data]);
    expect(rt.now() - started).toBeGreaterThanOrEqual(2000);
    expect(sent().map((m) => decodeBlock(getOption(m, OptionNumber.BLOCK1)!).num)).toEqual([0, 0, 1]);
  });

  it('4.13 becomes TOO_LARGE naming the server limit (Size1)', async () => {
    const r = receiving({ maxBodySize: 1000 });
    const { rt, request, sent } = setup(r.handler);
    const err = await drive(rt, sendBlock1(request, { code: Code.PUT, options: pathOptions('/up'), payload: body(5000) }, { runtime: rt }).catch((e: unknown) => e));
    expect(isCoapfwError(err, 'TOO_LARGE')).toBe(true);
    expect((err as Error).message).toMatch(/5000 bytes are more than the server takes \(at most 1000\)/);
    expect(sent()).toHaveLength(1); // Size1 on the first block: refused before the rest was sent
  });

  it('an early final answer to a non-final block ends the upload (2.04: the server has it)', async () => {
    const { rt, request, sent } = setup(() => ({ code: Code.CHANGED }));
    const res = await drive(rt, sendBlock1(request, { code: Code.PUT, options: pathOptions('/up'), payload: body(5000) }, { runtime: rt }));
    expect(res.code).toBe(Code.CHANGED);
    expect(sent()).toHaveLength(1);
  });
});
