/**
 * Block1 receiving (RFC 7959 §2.5, RFC 9175 §3), fed with datagrams.
 *
 * The libcoap fixtures were captured from libcoap 4.3.1 (Debian libcoap3-bin)
 * on loopback: a node:dgram listener printed every datagram in hex and
 * answered 2.31 with the Block1 echoed (2.04 for the last block), while
 *   coap-client-notls -m post -b 64 -f seq200.bin coap://127.0.0.1:PORT/x
 *   coap-client-notls -m put -b 1024 -f seq1500.bin coap://127.0.0.1:PORT/up   (listener asked for 256-byte blocks)
 *   coap-client-notls -m post -b 1024 -f report.json coap://127.0.0.1:PORT/status/d1
 * seq200.bin holds bytes 0..199; seq1500.bin byte i = 7i mod 256. What libcoap
 * sends: Block1 with Size1 (the whole length) and a 4-byte Request-Tag on every
 * block of a multi-block body, a new token per block, Uri-Port; a body that fits
 * one block goes as Block1 0/M=0 without Size1 or Request-Tag. After a 2.31
 * asking for 256 bytes in reply to a 1024-byte block 0 it continues at NUM 4.
 */
import { describe, expect, it } from 'vitest';
import { Block1Receiver, withBlock1, type Block1Options } from '../../src/blockwise/block1.js';
import { decodeMessage, type CoapMessage, type CoapOption } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber as O } from '../../src/codec/numbers.js';
import { decodeUint, encodeUint, getOption, uriPath } from '../../src/codec/options.js';
import type { CoapRequest, ResponseSpec } from '../../src/messaging/endpoint.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { hex, toHex, utf8 } from '../codec/helpers.js';

const seq = (n: number, f: (i: number) => number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => f(i) & 255);
const SEQ200 = seq(200, (i) => i);
const SEQ1500 = seq(1500, (i) => i * 7);
const PEER = { address: '127.0.0.1', port: 40000 };

/** Header (through the payload marker) of each captured datagram, and the slice of the file it carries. */
const POST_64: readonly [string, number, number][] = [
  ['4102b38c0172dcb34178d1030ad114c8d4db5e3aa522ff', 0, 64],
  ['4702b38d0200000000000372dcb34178d1031ad114c8d4db5e3aa522ff', 64, 128],
  ['4702b38e0300000000000372dcb34178d1032ad114c8d4db5e3aa522ff', 128, 192],
  ['4702b38f0400000000000372dcb34178d10332d114c8d4db5e3aa522ff', 192, 200],
];
const PUT_1024_THEN_256: readonly [string, number, number][] = [
  ['4103581d0172e829427570d1030ed21405dcd4db14d733c5ff', 0, 1024],
  ['4703581e0200000000000372e829427570d1034cd21405dcd4db14d733c5ff', 1024, 1280],
  ['4703581f0300000000000372e829427570d10354d21405dcd4db14d733c5ff', 1280, 1500],
];
const REPORT_1024 = '4102a1fe0172ec5a46737461747573026431d10306ff7b227374617465223a226f6b227d';

const datagram = (header: string, body: Uint8Array, from: number, to: number): CoapMessage => decodeMessage(new Uint8Array([...hex(header), ...body.subarray(from, to)]));

/** A receiver wrapped around a handler that records what it got and answers 2.04. */
function harness(options: Partial<Block1Options> = {}) {
  const runtime = new FakeRuntime();
  const receiver = new Block1Receiver({ runtime, ...options });
  const bodies: CoapRequest[] = [];
  const handle = withBlock1((req) => {
    bodies.push(req);
    return { code: Code.CHANGED };
  }, receiver);
  const send = (message: CoapMessage, peer = PEER): ResponseSpec => handle({ message, peer }) as ResponseSpec;
  return { runtime, receiver, bodies, send };
}

const block1Of = (r: ResponseSpec): string | undefined => {
  const o = r.options?.find((x) => x.number === O.BLOCK1);
  return o === undefined ? undefined : toHex(o.value);
};

/** A POST to /up carrying one block. */
function block(num: number, more: boolean, szx: number, payload: Uint8Array, extra: CoapOption[] = []): CoapMessage {
  const b = (num << 4) | (more ? 8 : 0) | szx;
  const options: CoapOption[] = [{ number: O.URI_PATH, value: utf8('up') }, { number: O.BLOCK1, value: encodeUint(b) }, ...extra].sort((x, y) => x.number - y.number);
  return { type: MessageType.CON, code: Code.POST, messageId: num, token: Uint8Array.of(num), options, payload };
}
const tag = (t: string): CoapOption => ({ number: O.REQUEST_TAG, value: hex(t) });
const size1 = (n: number): CoapOption => ({ number: O.SIZE1, value: encodeUint(n) });
/** Blocks of `body` at size exponent `szx`. */
const split = (body: Uint8Array, szx: number, extra: CoapOption[] = []): CoapMessage[] => {
  const size = 16 << szx;
  const n = Math.max(1, Math.ceil(body.length / size));
  return Array.from({ length: n }, (_, i) => block(i, i < n - 1, szx, body.subarray(i * size, (i + 1) * size), extra));
};

describe('Block1 with libcoap captures', () => {
  it('POST -b 64 of 200 bytes: 2.31 with Block1 echoed, then one whole body to the handler', () => {
    const { send, bodies, receiver } = harness();
    const answers = POST_64.map(([h, from, to]) => send(datagram(h, SEQ200, from, to)));
    expect(answers.map((a) => [a.code, block1Of(a)])).toEqual([
      [Code.CONTINUE, '0a'],
      [Code.CONTINUE, '1a'],
      [Code.CONTINUE, '2a'],
      [Code.CHANGED, '32'],
    ]);
    expect(bodies).toHaveLength(1);
    const got = bodies[0]!.message;
    expect(got.payload).toEqual(SEQ200);
    expect(uriPath(got)).toEqual(['x']);
    // The resource sees a plain request: no block-wise options left.
    expect(got.options.map((o) => o.number)).toEqual([O.URI_PORT, O.URI_PATH]);
    expect(receiver.assembling).toBe(0);
    expect(receiver.bufferedBytes).toBe(0);
  });

  it('PUT -b 1024 to a server that prefers 256-byte blocks: 0/M/256, then libcoap continues at NUM 4', () => {
    const { send, bodies } = harness({ preferredSzx: 4 });
    const answers = PUT_1024_THEN_256.map(([h, from, to]) => send(datagram(h, SEQ1500, from, to)));
    // What the capture's listener answered, and libcoap followed.
    expect(answers.map((a) => [a.code, block1Of(a)])).toEqual([
      [Code.CONTINUE, '0c'],
      [Code.CONTINUE, '4c'],
      [Code.CHANGED, '54'],
    ]);
    expect(bodies[0]!.message.payload).toEqual(SEQ1500);
  });

  it('a status report in one block (Block1 0/0/1024, no Size1) is just a body', () => {
    const { send, bodies, receiver } = harness();
    const res = send(decodeMessage(hex(REPORT_1024)));
    expect(res.code).toBe(Code.CHANGED);
    expect(block1Of(res)).toBe('06');
    expect(new TextDecoder().decode(bodies[0]!.message.payload)).toBe('{"state":"ok"}');
    expect(uriPath(bodies[0]!.message)).toEqual(['status', 'd1']);
    expect(receiver.assembling).toBe(0);
  });
});

describe('Block1 answers', () => {
  const body = seq(100, (i) => i * 3 + 1);

  it('passes a request without Block1 through untouched, and does not echo Block1', () => {
    const { send, bodies } = harness();
    const msg: CoapMessage = { ...block(0, false, 0, body), options: [{ number: O.URI_PATH, value: utf8('up') }] };
    const res = send(msg);
    expect(bodies[0]!.message).toBe(msg);
    expect(block1Of(res)).toBeUndefined();
  });

  it('4.08 for a block whose predecessor is missing, and for one without a start; the body is dropped', () => {
    const { send, receiver } = harness();
    const blocks = split(body, 0);
    expect(send(blocks[0]!).code).toBe(Code.CONTINUE);
    expect(send(blocks[2]!).code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(receiver.assembling).toBe(0);
    expect(send(blocks[1]!).code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(receiver.stats.incomplete).toBe(2);
  });

  it('answers a retransmitted block again without changing the body; different bytes there are 4.08', () => {
    const { send, bodies } = harness();
    const blocks = split(body, 0);
    send(blocks[0]!);
    send(blocks[1]!);
    expect(block1Of(send(blocks[0]!))).toBe('08'); // 0/M/16 again
    expect(block1Of(send(blocks[1]!))).toBe('18');
    for (const b of blocks.slice(2)) send(b);
    expect(bodies[0]!.message.payload).toEqual(body);
    const { send: send2 } = harness();
    send2(blocks[0]!);
    send2(blocks[1]!);
    const forged = block(1, true, 0, body.subarray(16, 32).map((x) => x ^ 1));
    expect(send2(forged).code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
  });

  it('a new block 0 with other bytes starts the body over', () => {
    const { send, bodies } = harness();
    const other = seq(40, (i) => 200 - i);
    send(split(body, 0)[0]!);
    send(split(body, 0)[1]!);
    for (const b of split(other, 0)) send(b);
    expect(bodies.map((b) => b.message.payload)).toEqual([other]);
  });

  it('4.13 with Size1 = the limit: announced up front, or when the body grows past it', () => {
    const { send, receiver } = harness({ maxBodySize: 64 });
    const first = send(block(0, true, 0, body.subarray(0, 16), [size1(100)]));
    expect(first.code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
    expect(decodeUint(getOption({ options: first.options ?? [] } as CoapMessage, O.SIZE1)!)).toBe(64);
    const blocks = split(body, 0);
    for (const b of blocks.slice(0, 4)) expect(send(b).code).toBe(Code.CONTINUE);
    expect(send(blocks[4]!).code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
    expect(receiver.assembling).toBe(0);
    expect(receiver.stats.tooLarge).toBe(2);
    // A plain request with a payload past the limit too.
    expect(send({ ...block(0, false, 0, body), options: [] }).code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
  });

  it('4.00 for a non-final block of the wrong size or a final one larger than the block size; 4.02 for a bad Block1', () => {
    const { send } = harness();
    expect(send(block(0, true, 1, body.subarray(0, 31))).code).toBe(Code.BAD_REQUEST);
    expect(send(block(0, false, 0, body.subarray(0, 17))).code).toBe(Code.BAD_REQUEST);
    const bad = (value: Uint8Array): CoapMessage => ({ ...block(0, false, 0, body), options: [{ number: O.BLOCK1, value }] });
    expect(send(bad(Uint8Array.of(0x0f))).code).toBe(Code.BAD_OPTION); // SZX 7
    expect(send(bad(Uint8Array.of(1, 2, 3, 4))).code).toBe(Code.BAD_OPTION);
  });

  it('keeps concurrent bodies of one peer apart by Request-Tag (absent and empty are two tags), and peers and paths apart', () => {
    const { send, bodies } = harness();
    const a = seq(50, (i) => i);
    const b = seq(50, (i) => 255 - i);
    const c = seq(50, (i) => 77 + i);
    const d = seq(50, (i) => 9 * i);
    const streams = [split(a, 0, [tag('01')]), split(b, 0, [tag('02')]), split(c, 0), split(d, 0, [{ number: O.REQUEST_TAG, value: new Uint8Array(0) }])];
    for (let i = 0; i < 4; i++) for (const s of streams) expect(send(s[i]!).code).toBe(i < 3 ? Code.CONTINUE : Code.CHANGED);
    expect(bodies.map((x) => x.message.payload)).toEqual([a, b, c, d]);
    const { send: s2, bodies: got2 } = harness();
    const other = { address: '::1', port: 40000 };
    const elsewhere = (m: CoapMessage): CoapMessage => ({ ...m, options: m.options.map((o) => (o.number === O.URI_PATH ? { ...o, value: utf8('down') } : o)) });
    for (let i = 0; i < 4; i++) {
      s2(split(a, 0)[i]!);
      s2(split(b, 0)[i]!, other);
      s2(elsewhere(split(c, 0)[i]!));
    }
    expect(got2.map((x) => x.message.payload)).toEqual([a, b, c]);
  });

  it('drops a body that stops arriving after the idle timeout (fake clock)', () => {
    const { send, runtime, receiver } = harness({ idleTimeoutMs: 10_000 });
    const blocks = split(body, 0);
    send(blocks[0]!);
    runtime.advance(9_999);
    expect(send(blocks[1]!).code).toBe(Code.CONTINUE); // the timeout counts from the last block
    runtime.advance(10_000);
    expect(send(blocks[2]!).code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(receiver.stats.dropped).toBe(1);
    expect(receiver.bufferedBytes).toBe(0);
  });

  it('bounds bodies at once (5.03 with Max-Age), per peer (its oldest is replaced) and buffered bytes', () => {
    const { send, runtime, receiver } = harness({ maxAssemblies: 2, maxPerPeer: 2, idleTimeoutMs: 60_000 });
    const peers = [1, 2, 3].map((port) => ({ address: '127.0.0.1', port }));
    send(split(body, 0)[0]!, peers[0]);
    runtime.advance(20_000);
    send(split(body, 0)[0]!, peers[1]);
    const refused = send(split(body, 0)[0]!, peers[2]);
    expect(refused.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(decodeUint(refused.options!.find((o) => o.number === O.MAX_AGE)!.value)).toBe(40); // when the oldest expires
    expect(receiver.stats.overloaded).toBe(1);

    const one = harness({ maxPerPeer: 2 });
    one.send(split(body, 0, [tag('01')])[0]!);
    one.send(split(body, 0, [tag('02')])[0]!);
    one.send(split(body, 0, [tag('03')])[0]!); // replaces tag 01
    expect(one.receiver.assembling).toBe(2);
    expect(one.send(split(body, 0, [tag('01')])[1]!).code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(one.send(split(body, 0, [tag('03')])[1]!).code).toBe(Code.CONTINUE);

    const bytes = harness({ maxBufferedBytes: 100, maxPerPeer: 10 });
    expect(bytes.send(block(0, true, 0, body.subarray(0, 16), [tag('01'), size1(60)])).code).toBe(Code.CONTINUE);
    expect(bytes.send(block(0, true, 0, body.subarray(0, 16), [tag('02'), size1(60)])).code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(bytes.receiver.bufferedBytes).toBe(60);
  });

  it('echoes Block1 on an async handler response, and leaves a handler-set Block1 alone', async () => {
    const runtime = new FakeRuntime();
    const handle = withBlock1(async () => ({ code: Code.CREATED }), { runtime });
    const blocks = split(body, 0);
    for (const b of blocks.slice(0, -1)) handle({ message: b, peer: PEER });
    const res = await handle({ message: blocks[blocks.length - 1]!, peer: PEER });
    expect(res.code).toBe(Code.CREATED);
    expect(block1Of(res)).toBe('60'); // 6/0/16
    const own = withBlock1(() => ({ code: Code.CHANGED, options: [{ number: O.BLOCK1, value: Uint8Array.of(0x16) }] }), { runtime });
    expect(block1Of(own({ message: block(0, false, 6, body), peer: PEER }) as ResponseSpec)).toBe('16');
  });

  it('refuses bad options at construction', () => {
    const runtime = new FakeRuntime();
    expect(() => new Block1Receiver({ runtime, preferredSzx: 7 })).toThrow(/preferredSzx/);
    expect(() => new Block1Receiver({ runtime, maxAssemblies: 0 })).toThrow(/maxAssemblies/);
    expect(() => new Block1Receiver({ runtime, idleTimeoutMs: 1.5 })).toThrow(/idleTimeoutMs/);
  });
});
