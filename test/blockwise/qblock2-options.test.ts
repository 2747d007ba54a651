import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeMessage, decodeMessage, type CoapMessage, type CoapOption } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { bodyRequest, continueRequest, missingRequests, parseQBlock2Request, qblock2Option } from '../../src/blockwise/qblock2-options.js';
import { selectBlocks } from '../../src/blockwise/qblock2-select.js';
import { isCoapfwError } from '../../src/errors.js';
import { qb2Strings } from './qblock2-harness.js';

const req = (options: CoapOption[]): CoapMessage => ({ type: MessageType.NON, code: Code.GET, messageId: 1, token: Uint8Array.of(1), options, payload: new Uint8Array(0) });
const q = (num: number, more: boolean, szx = 6): CoapOption => qblock2Option(num, more, szx);

describe('Q-Block2 option value (RFC 9177 §4.2 = RFC 7959 §2.2 layout)', () => {
  it('encodes NUM/M/SZX like Block2: 0/1/1024 is 0x0e, 10/1/1024 is 0xae, 300/0/1024 is 0x12c6', () => {
    expect([...q(0, true).value]).toEqual([0x0e]);
    expect([...q(10, true).value]).toEqual([0xae]);
    expect([...q(300, false).value]).toEqual([0x12, 0xc6]);
    expect(q(0, false, 0).value.length).toBe(0); // 0/0/16 is the empty uint
    expect(q(0, true).number).toBe(31);
  });
});

describe('parseQBlock2Request (§4.4)', () => {
  it('classifies NUM 0 with M as the entire body, a multiple of MAX_PAYLOADS with M as Continue, others as blocks', () => {
    expect(parseQBlock2Request(req([q(0, true)]))).toEqual({ kind: 'body', szx: 6 });
    expect(parseQBlock2Request(req([q(20, true)]))).toEqual({ kind: 'continue', num: 20, szx: 6 });
    expect(parseQBlock2Request(req([q(20, true)]), { maxPayloads: 8 })).toEqual({ kind: 'blocks', items: [{ num: 20, more: true }], szx: 6 });
    expect(parseQBlock2Request(req([q(3, false)]))).toEqual({ kind: 'blocks', items: [{ num: 3, more: false }], szx: 6 });
    expect(parseQBlock2Request(req([q(1, false), q(9, false)]))?.kind).toBe('blocks');
    expect(parseQBlock2Request(req(pathOptions('/a')))).toBeUndefined();
  });

  it('answers decreasing or repeated block numbers with 4.00 (§4.4), Block2 beside Q-Block2 and SZX 7 with 4.02', () => {
    const code = (m: CoapMessage): number | undefined => {
      try {
        parseQBlock2Request(m);
      } catch (e) {
        return isCoapfwError(e) ? e.responseCode : -1;
      }
      return undefined;
    };
    expect(code(req([q(9, false), q(1, false)]))).toBe(Code.BAD_REQUEST);
    expect(code(req([q(1, false), q(1, false)]))).toBe(Code.BAD_REQUEST);
    expect(code(req([q(1, false), q(2, false, 5)]))).toBe(Code.BAD_REQUEST);
    expect(code(req([q(0, true), { number: OptionNumber.BLOCK2, value: Uint8Array.of(6) }]))).toBe(Code.BAD_OPTION);
    expect(code(req([{ number: 31, value: Uint8Array.of(0x0f) }]))).toBe(Code.BAD_OPTION);
    expect(code(req([{ number: 31, value: Uint8Array.of(1, 2, 3, 4) }]))).toBe(Code.BAD_OPTION);
    expect(code(req(Array.from({ length: 300 }, (_, i) => q(i, false))))).toBe(Code.BAD_REQUEST);
  });

  it('fuzzed Q-Block2 option lists never throw anything but a CoapfwError with a response code', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 5 }), { maxLength: 40 }), fc.boolean(), (values, withBlock2) => {
        const options: CoapOption[] = values.map((value) => ({ number: 31, value }));
        if (withBlock2) options.push({ number: 23, value: Uint8Array.of(6) });
        // Through the real codec: what a datagram can carry.
        const m = decodeMessage(encodeMessage(req(options)));
        try {
          const r = parseQBlock2Request(m);
          if (r !== undefined) selectBlocks(r, 50_000, 6, 10);
        } catch (e) {
          expect(isCoapfwError(e)).toBe(true);
          expect((e as { responseCode?: number }).responseCode).toBeGreaterThanOrEqual(0x80);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('selectBlocks', () => {
  it('sends one instance of a block asked for twice by overlapping options (§4.4)', () => {
    const r = parseQBlock2Request(req([q(2, true), q(5, false), q(12, false)]))!;
    expect(selectBlocks(r, 20 * 1024, 6, 10).blocks).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 12]);
  });

  it('a body request is the first MAX_PAYLOADS_SET; a Continue the set it names; past the end is 4.02', () => {
    expect(selectBlocks({ kind: 'body', szx: 6 }, 5000, 6, 10).blocks).toEqual([0, 1, 2, 3, 4]);
    expect(selectBlocks({ kind: 'continue', num: 10, szx: 6 }, 15 * 1024, 6, 10).blocks).toEqual([10, 11, 12, 13, 14]);
    expect(() => selectBlocks({ kind: 'continue', num: 20, szx: 6 }, 15 * 1024, 6, 10)).toThrow(expect.objectContaining({ responseCode: Code.BAD_OPTION }));
  });

  it('rescales NUM when the client asks for larger blocks than the server sends (RFC 7959 §2.4)', () => {
    const s = selectBlocks({ kind: 'blocks', items: [{ num: 3, more: false }], szx: 6 }, 8192, 5, 10);
    expect(s).toMatchObject({ szx: 5, blocks: [6, 7] });
  });
});

describe('request builders', () => {
  const opts = pathOptions('/fw/image.bin');

  it('the body request is GET with Q-Block2 0/1 and Size2, CON by default (§4.1)', () => {
    const r = bodyRequest([...opts, { number: OptionNumber.ETAG, value: Uint8Array.of(1) }]);
    expect(r.confirmable).toBe(true);
    expect(qb2Strings({ options: r.options! })).toEqual(['0/1/1024']);
    expect(r.options!.some((o) => o.number === OptionNumber.SIZE2)).toBe(true);
    expect(r.options!.some((o) => o.number === OptionNumber.ETAG)).toBe(false);
  });

  it('a Continue names a non-zero multiple of MAX_PAYLOADS', () => {
    expect(qb2Strings({ options: continueRequest(opts, 10, 6).options! })).toEqual(['10/1/1024']);
    expect(() => continueRequest(opts, 15, 6)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('missing-block requests list ascending Q-Block2 options, batched to fit one datagram', () => {
    const blocks = Array.from({ length: 2000 }, (_, i) => i * 3);
    const specs = missingRequests(opts, blocks, 6, { maxPerRequest: 10_000, maxDatagram: 1152 });
    expect(specs.length).toBeGreaterThan(1);
    const all: string[] = [];
    for (const s of specs) {
      const bytes = encodeMessage({ type: MessageType.NON, code: s.code, messageId: 0, token: new Uint8Array(8), options: s.options!, payload: new Uint8Array(0) });
      expect(bytes.length).toBeLessThanOrEqual(1152);
      expect(s.confirmable).toBe(false);
      all.push(...qb2Strings({ options: s.options! }));
    }
    expect(all).toEqual(blocks.map((n) => `${n}/0/1024`));
    expect(missingRequests(opts, [1, 2, 3, 4, 5], 6, { maxPerRequest: 2 })).toHaveLength(3);
    expect(() => missingRequests(opts, [3, 1], 6)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
