import { describe, expect, it } from 'vitest';
import { decodeBlock, encodeBlock } from '../../src/codec/block.js';
import type { CoapMessage, CoapOption } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { decodeUint, getOption } from '../../src/codec/options.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { bufferSource } from '../../src/blockwise/source.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import { sha256 } from '@noble/hashes/sha2.js';

const data = Uint8Array.from({ length: 5000 }, (_, i) => (i * 7) & 0xff);
const source = bufferSource(data);

function get(options: CoapOption[] = []): CoapMessage {
  return { type: MessageType.CON, code: Code.GET, messageId: 1, token: new Uint8Array([1]), options, payload: new Uint8Array() };
}
const block2 = (num: number, szx: number): CoapOption => ({ number: OptionNumber.BLOCK2, value: encodeBlock({ num, more: false, szx }) });
const size2Req: CoapOption = { number: OptionNumber.SIZE2, value: new Uint8Array() };

function serve(req: CoapMessage, maxSzx?: number): ResponseSpec & { msg: CoapMessage } {
  const r = serveBlock2(req, source, { maxSzx }) as ResponseSpec;
  const msg: CoapMessage = { ...get(), code: r.code, options: r.options ?? [], payload: r.payload ?? new Uint8Array() };
  return { ...r, msg };
}

describe('serveBlock2 (RFC 7959)', () => {
  it('serves any block from the request alone, with ETag = SHA-256 prefix', () => {
    const r = serve(get([block2(3, 4)])); // 256-byte blocks
    expect(r.code).toBe(Code.CONTENT);
    expect(decodeBlock(getOption(r.msg, OptionNumber.BLOCK2)!)).toEqual({ num: 3, more: true, szx: 4 });
    expect(r.msg.payload).toEqual(data.subarray(768, 1024));
    expect(getOption(r.msg, OptionNumber.ETAG)).toEqual(sha256(data).slice(0, 8));
    expect(getOption(r.msg, OptionNumber.SIZE2)).toBeUndefined();
  });

  it('sets M=0 and a short payload on the last block', () => {
    const r = serve(get([block2(4, 6)]));
    expect(decodeBlock(getOption(r.msg, OptionNumber.BLOCK2)!)).toEqual({ num: 4, more: false, szx: 6 });
    expect(r.msg.payload).toEqual(data.subarray(4096));
  });

  it('sends Size2 on block 0 and whenever asked with Size2 = 0', () => {
    expect(decodeUint(getOption(serve(get([block2(0, 6)])).msg, OptionNumber.SIZE2)!)).toBe(5000);
    expect(decodeUint(getOption(serve(get([block2(2, 6), size2Req])).msg, OptionNumber.SIZE2)!)).toBe(5000);
  });

  it('uses the server maximum when the client asks for a larger block (§2.4), rescaling NUM', () => {
    const r = serve(get([block2(1, 6)]), 4); // client: block 1 of 1024 = offset 1024; server max 256
    const b = decodeBlock(getOption(r.msg, OptionNumber.BLOCK2)!);
    expect(b).toEqual({ num: 4, more: true, szx: 4 });
    expect(r.msg.payload).toEqual(data.subarray(1024, 1280));
  });

  it('honours a smaller block size asked for by the client (early negotiation)', () => {
    const r = serve(get([block2(0, 0)]));
    expect(r.msg.payload).toEqual(data.subarray(0, 16));
    expect(decodeBlock(getOption(r.msg, OptionNumber.BLOCK2)!).szx).toBe(0);
  });

  it('answers a request without Block2 for a large resource with block 0 (late negotiation)', () => {
    const r = serve(get());
    expect(decodeBlock(getOption(r.msg, OptionNumber.BLOCK2)!)).toEqual({ num: 0, more: true, szx: 6 });
    expect(r.msg.payload.length).toBe(1024);
  });

  it('answers a small resource whole, without Block2', () => {
    const small = bufferSource(new Uint8Array([1, 2, 3]));
    const r = serveBlock2(get(), small) as ResponseSpec;
    expect(r.payload).toEqual(new Uint8Array([1, 2, 3]));
    expect(r.options!.some((o) => o.number === OptionNumber.BLOCK2)).toBe(false);
  });

  it('serves an empty resource as block 0 with M=0', () => {
    const empty = bufferSource(new Uint8Array(0));
    const r = serveBlock2(get([block2(0, 6)]), empty) as ResponseSpec;
    expect(r.code).toBe(Code.CONTENT);
    expect(r.payload!.length).toBe(0);
  });

  it('answers 4.02 for a block past the end, and for the exact end', () => {
    expect(serve(get([block2(5, 6)])).code).toBe(Code.BAD_OPTION);
    const exact = bufferSource(new Uint8Array(2048));
    expect((serveBlock2(get([block2(2, 6)]), exact) as ResponseSpec).code).toBe(Code.BAD_OPTION);
    expect((serveBlock2(get([block2(1, 6)]), exact) as ResponseSpec).code).toBe(Code.CONTENT);
  });

  it('answers 4.02 for a malformed Block2 (SZX 7, 4-byte value)', () => {
    expect(serve(get([{ number: OptionNumber.BLOCK2, value: new Uint8Array([0x07]) }])).code).toBe(Code.BAD_OPTION);
    expect(serve(get([{ number: OptionNumber.BLOCK2, value: new Uint8Array([1, 2, 3, 4]) }])).code).toBe(Code.BAD_OPTION);
  });

  it('reassembles to the original bytes at every block size', () => {
    for (let szx = 0; szx <= 6; szx++) {
      const parts: Uint8Array[] = [];
      for (let num = 0; ; num++) {
        const r = serve(get([block2(num, szx)]));
        parts.push(r.msg.payload);
        if (!decodeBlock(getOption(r.msg, OptionNumber.BLOCK2)!).more) break;
      }
      expect(Buffer.concat(parts)).toEqual(Buffer.from(data));
    }
  });
});
