/**
 * Streamed Block1 receiving (block1-stream.ts): the rules of RFC 7959 §2.5
 * and RFC 9175 §3, with every block handed to a sink as it comes and the sink
 * aborted whenever the body will never complete.
 */
import { describe, expect, it } from 'vitest';
import { Block1Stream, type Block1StreamOptions, type UploadSink } from '../../src/blockwise/block1-stream.js';
import { decodeMessage, type CoapMessage, type CoapOption } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber as O } from '../../src/codec/numbers.js';
import { decodeUint, encodeUint, getOption } from '../../src/codec/options.js';
import type { CoapRequest, ResponseSpec } from '../../src/messaging/endpoint.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { hex, utf8 } from '../codec/helpers.js';

const PEER = { address: '127.0.0.1', port: 40000 };
const body = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 13) & 255);

/** A recording sink. */
class Sink implements UploadSink {
  written: Uint8Array[] = [];
  finished = false;
  aborted: string | undefined;
  async write(data: Uint8Array): Promise<void> {
    this.written.push(Uint8Array.from(data));
  }
  async finish(): Promise<ResponseSpec> {
    this.finished = true;
    return { code: Code.CREATED };
  }
  abort(reason: string): void {
    this.aborted = reason;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.written.flatMap((w) => [...w]));
  }
}

function harness(options: Partial<Block1StreamOptions> = {}) {
  const runtime = new FakeRuntime();
  const stream = new Block1Stream({ runtime, ...options });
  const sinks: Sink[] = [];
  const opened: (number | undefined)[] = [];
  const handle = stream.handler((_req, size1) => {
    opened.push(size1);
    const s = new Sink();
    sinks.push(s);
    return s;
  });
  const send = (message: CoapMessage, peer = PEER): Promise<ResponseSpec> => Promise.resolve(handle({ message, peer } as CoapRequest));
  return { runtime, stream, sinks, opened, send };
}

function block(num: number, more: boolean, szx: number, payload: Uint8Array, extra: CoapOption[] = []): CoapMessage {
  const b = (num << 4) | (more ? 8 : 0) | szx;
  const options: CoapOption[] = [{ number: O.URI_PATH, value: utf8('up') }, { number: O.BLOCK1, value: encodeUint(b) }, ...extra].sort((x, y) => x.number - y.number);
  return { type: MessageType.CON, code: Code.PUT, messageId: num, token: Uint8Array.of(num), options, payload };
}
const size1 = (n: number): CoapOption => ({ number: O.SIZE1, value: encodeUint(n) });
const tag = (t: string): CoapOption => ({ number: O.REQUEST_TAG, value: hex(t) });
const block1Of = (r: ResponseSpec): number | undefined => {
  const o = r.options?.find((x) => x.number === O.BLOCK1);
  return o === undefined ? undefined : decodeUint(o.value);
};

describe('Block1Stream', () => {
  it('streams blocks in order into one sink, 2.31 for each non-final block, the final answer with Block1 echoed (M=0)', async () => {
    const { sinks, opened, send } = harness();
    const data = body(200);
    for (let i = 0; i < 3; i++) {
      const r = await send(block(i, true, 2, data.subarray(i * 64, i * 64 + 64), [...(i === 0 ? [size1(200)] : []), tag('01020304')]));
      expect(r.code).toBe(Code.CONTINUE);
      expect(block1Of(r)).toBe((i << 4) | 8 | 2);
    }
    const last = await send(block(3, false, 2, data.subarray(192), [tag('01020304')]));
    expect(last.code).toBe(Code.CREATED);
    expect(block1Of(last)).toBe((3 << 4) | 2);
    expect(opened).toEqual([200]);
    expect(sinks).toHaveLength(1);
    expect(sinks[0]!.bytes()).toEqual(data);
    expect(sinks[0]!.written).toHaveLength(4); // never the whole body in one buffer
    expect(sinks[0]!.finished).toBe(true);
  });

  it('a retransmitted block (new message ID, same bytes) is answered again and written once', async () => {
    const { sinks, send } = harness();
    const data = body(100);
    await send(block(0, true, 2, data.subarray(0, 64)));
    expect((await send(block(0, true, 2, data.subarray(0, 64)))).code).toBe(Code.CONTINUE);
    expect((await send(block(1, false, 2, data.subarray(64)))).code).toBe(Code.CREATED);
    expect(sinks).toHaveLength(1);
    expect(sinks[0]!.bytes()).toEqual(data);
  });

  it('a gap is 4.08 and aborts the sink; the body never finishes', async () => {
    const { sinks, send } = harness();
    const data = body(300);
    await send(block(0, true, 2, data.subarray(0, 64)));
    const r = await send(block(2, true, 2, data.subarray(128, 192)));
    expect(r.code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(sinks[0]!.aborted).toBe('missing block');
    expect(sinks[0]!.finished).toBe(false);
    // A block of a body that was never started is 4.08 too, and opens nothing.
    expect((await send(block(3, true, 2, data.subarray(192, 256)))).code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
    expect(sinks).toHaveLength(1);
  });

  it('Size1 past the limit is 4.13 with Size1 = the limit before anything is opened; a body growing past it too', async () => {
    const { sinks, send } = harness({ maxBodySize: 100 });
    const r = await send(block(0, true, 2, body(64), [size1(5000)]));
    expect(r.code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
    expect(decodeUint(getOption(r as CoapMessage, O.SIZE1)!)).toBe(100);
    expect(sinks).toHaveLength(0);
    await send(block(0, true, 2, body(64)));
    expect((await send(block(1, true, 2, body(64)))).code).toBe(Code.REQUEST_ENTITY_TOO_LARGE);
    expect(sinks[0]!.aborted).toBe('too large');
  });

  it('an upload that stops is aborted after the idle timeout (a timer, not the next request)', async () => {
    const { runtime, sinks, stream, send } = harness({ idleTimeoutMs: 10_000 });
    await send(block(0, true, 2, body(64)));
    runtime.advance(9_000);
    await send(block(1, true, 2, body(64)));
    runtime.advance(9_999);
    expect(sinks[0]!.aborted).toBeUndefined();
    runtime.advance(1);
    expect(sinks[0]!.aborted).toBe('no block for 10000 ms');
    expect(stream.active).toBe(0);
    expect(stream.stats.aborted).toBe(1);
  });

  it('bodies of one peer are told apart by Request-Tag; a peer over its share replaces its own oldest', async () => {
    const { sinks, send } = harness({ maxPerPeer: 2 });
    await send(block(0, true, 2, body(64), [tag('aa')]));
    await send(block(0, true, 2, body(64), [tag('bb')]));
    await send(block(0, true, 2, body(64), [tag('cc')]));
    expect(sinks.map((s) => s.aborted)).toEqual(['replaced by a newer upload of the peer', undefined, undefined]);
    expect((await send(block(1, false, 2, body(10), [tag('bb')]))).code).toBe(Code.CREATED);
    expect((await send(block(1, false, 2, body(10), [tag('aa')]))).code).toBe(Code.REQUEST_ENTITY_INCOMPLETE);
  });

  it('too many uploads at once: 5.03 with Max-Age, nothing opened', async () => {
    const { sinks, send } = harness({ maxUploads: 2, maxPerPeer: 8 });
    await send(block(0, true, 2, body(64), [tag('01')]));
    await send(block(0, true, 2, body(64), [tag('02')]));
    const r = await send(block(0, true, 2, body(64), [tag('03')]));
    expect(r.code).toBe(Code.SERVICE_UNAVAILABLE);
    expect(decodeUint(getOption(r as CoapMessage, O.MAX_AGE)!)).toBe(120);
    expect(sinks).toHaveLength(2);
  });

  it('the opener may answer at once (2.04: already held), and a body without Block1 goes through whole', async () => {
    const runtime = new FakeRuntime();
    const stream = new Block1Stream({ runtime });
    const held = stream.handler(() => ({ code: Code.CHANGED }));
    expect((await held({ message: block(0, true, 2, body(64)), peer: PEER })).code).toBe(Code.CHANGED);
    expect(stream.active).toBe(0);
    const sink = new Sink();
    const whole = stream.handler(() => sink);
    const msg = decodeMessage(Uint8Array.from([0x40, 0x03, 0, 1, 0xb2, 0x75, 0x70, 0xff, 1, 2, 3]));
    expect((await whole({ message: msg, peer: PEER })).code).toBe(Code.CREATED);
    expect(sink.bytes()).toEqual(Uint8Array.of(1, 2, 3));
  });

  it('a write that fails ends the upload with its error and aborts the sink', async () => {
    const runtime = new FakeRuntime();
    const stream = new Block1Stream({ runtime });
    const sink = new Sink();
    sink.write = async () => {
      throw new Error('disk full');
    };
    const handle = stream.handler(() => sink);
    await expect(Promise.resolve(handle({ message: block(0, true, 2, body(64)), peer: PEER }))).rejects.toThrow('disk full');
    expect(sink.aborted).toBe('write failed');
    expect(stream.active).toBe(0);
  });

  it('a smaller preferred size is asked for in the 2.31 (§2.3) and the body continues at it', async () => {
    const { sinks, send } = harness({ preferredSzx: 2 });
    const data = body(300);
    const r = await send(block(0, true, 4, data.subarray(0, 256)));
    expect(block1Of(r)).toBe(8 | 2); // Figure 6: the received block's number at the new size (0), M, 64 bytes; the client goes on at 256 = NUM 4
    expect((await send(block(4, false, 2, data.subarray(256)))).code).toBe(Code.CREATED);
    expect(sinks[0]!.bytes()).toEqual(data);
  });

  it('close() aborts every upload in progress', async () => {
    const { sinks, stream, send } = harness();
    await send(block(0, true, 2, body(64)));
    stream.close();
    expect(sinks[0]!.aborted).toBe('server closing');
  });
});
