import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, peekHeader, type CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, getOptions, uriPath, uriQuery } from '../../src/codec/options.js';
import { hex, toHex, utf8 } from './helpers.js';

const msg = (m: Partial<CoapMessage>): CoapMessage => ({
  type: MessageType.CON,
  code: Code.GET,
  messageId: 0,
  token: new Uint8Array(0),
  options: [],
  payload: new Uint8Array(0),
  ...m,
});

describe('decodeMessage / encodeMessage: fixtures', () => {
  it('RFC 7252 Appendix A, Figure 16: CON GET /temperature, MID 0x7d34, no token', () => {
    const bytes = hex('40 01 7d 34 bb 74 65 6d 70 65 72 61 74 75 72 65');
    const m = decodeMessage(bytes);
    expect(m.type).toBe(MessageType.CON);
    expect(m.code).toBe(Code.GET);
    expect(m.messageId).toBe(0x7d34);
    expect(m.token.length).toBe(0);
    expect(uriPath(m)).toEqual(['temperature']);
    expect(m.payload.length).toBe(0);
    expect(toHex(encodeMessage(m))).toBe(toHex(bytes));
  });

  it('RFC 7252 Appendix A, Figure 16: ACK 2.05 with payload "22.3 C"', () => {
    const bytes = hex('60 45 7d 34 ff 32 32 2e 33 20 43');
    const m = decodeMessage(bytes);
    expect(m.type).toBe(MessageType.ACK);
    expect(m.code).toBe(Code.CONTENT);
    expect(Buffer.from(m.payload).toString()).toBe('22.3 C');
    expect(toHex(encodeMessage(m))).toBe(toHex(bytes));
  });

  it('RFC 7252 Appendix A, Figure 17: token 0x20 and extended options', () => {
    const m = msg({
      type: MessageType.CON,
      code: Code.GET,
      messageId: 0x7d35,
      token: hex('20'),
      options: [{ number: OptionNumber.URI_PATH, value: utf8('temperature') }],
    });
    expect(toHex(encodeMessage(m))).toBe('41017d3520bb74656d7065726174757265');
  });

  it('encodes option deltas with 1- and 2-byte extensions (RFC 7252 §3.1)', () => {
    const m = msg({
      options: [
        { number: 12, value: hex('') },
        { number: 12 + 13, value: hex('') }, // delta 13 -> nibble 13, ext 0
        { number: 300, value: new Uint8Array(300) }, // delta 275 -> nibble 14, ext 6; len 300 -> nibble 14, ext 31
      ],
    });
    const b = encodeMessage(m);
    expect(toHex(b.subarray(0, 9))).toBe('4001000' + '0' + 'c0' + 'd0' + '00' + 'ee' + '00');
    const d = decodeMessage(b);
    expect(d.options.map((o) => [o.number, o.value.length])).toEqual([
      [12, 0],
      [25, 0],
      [300, 300],
    ]);
  });

  it('sorts options stably on encode and keeps repeated option order', () => {
    const m = msg({
      options: [
        { number: OptionNumber.URI_QUERY, value: utf8('q') },
        { number: OptionNumber.URI_PATH, value: utf8('a') },
        { number: OptionNumber.URI_PATH, value: utf8('b') },
      ],
    });
    const d = decodeMessage(encodeMessage(m));
    expect(uriPath(d)).toEqual(['a', 'b']);
    expect(uriQuery(d)).toEqual(['q']);
    expect(getOptions(d, OptionNumber.URI_PATH).length).toBe(2);
    expect(getOption(d, OptionNumber.ETAG)).toBeUndefined();
  });

  it('returns copies: mutating the input datagram does not change the message', () => {
    const bytes = hex('41 01 00 01 aa b1 61 ff 01 02');
    const m = decodeMessage(bytes);
    bytes.fill(0);
    expect(toHex(m.token)).toBe('aa');
    expect(toHex(m.options[0]!.value)).toBe('61');
    expect(toHex(m.payload)).toBe('0102');
  });

  it('decodes a Buffer view at a non-zero offset into plain Uint8Arrays', () => {
    const pool = Buffer.from('deadbeef' + '41450001aab161ff0102' + 'cafe', 'hex');
    const view = pool.subarray(4, pool.length - 2);
    const m = decodeMessage(view);
    expect(Buffer.isBuffer(m.payload)).toBe(false);
    expect(toHex(m.token)).toBe('aa');
    expect(toHex(m.payload)).toBe('0102');
    expect(toHex(encodeMessage({ ...m, token: Buffer.from('bb', 'hex') }))).toBe('41450001bbb161ff0102');
  });

  it('peekHeader reads type and message ID of a malformed CON (for RST)', () => {
    expect(peekHeader(hex('4f 01 12 34'))).toEqual({ version: 1, type: 0, tokenLength: 15, code: 1, messageId: 0x1234 });
    expect(peekHeader(hex('40 01 12'))).toBeUndefined();
  });
});

describe('decodeMessage: rejects malformed datagrams with MALFORMED_MESSAGE', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['empty datagram', '', /shorter than the 4-byte header/],
    ['3 bytes', '400100', /shorter/],
    ['version 0', '000100 01', /version 0/],
    ['version 2', '800100 01', /version 2/],
    ['TKL 9', '49010001 000102030405060708', /token length 9/],
    ['TKL 15', '4f010001', /token length 15/],
    ['token truncated', '44010001 0102', /token of 4 bytes/],
    ['delta nibble 15', '40010001 f0', /delta nibble 15/],
    ['length nibble 15', '40010001 0f', /length nibble 15/],
    ['delta 13 ext missing', '40010001 d0', /extended option delta/],
    ['delta 14 ext short', '40010001 e0 00', /extended option delta/],
    ['length 13 ext missing', '40010001 bd', /extended option length/],
    ['length 14 ext short', '40010001 be 01', /extended option length/],
    ['value past end', '40010001 b5 6162', /runs past the end/],
    ['option number > 65535', '40010001 e0 ffff e0 0100', /exceeds 65535/],
    ['marker without payload', '40010001 ff', /payload marker followed by no payload/],
    ['empty message with token', '41000001 aa', /Empty message/],
    ['empty message with payload', '40000001 ff00', /Empty message/],
    ['empty message with option', '40000001 b161', /Empty message/],
  ];
  for (const [name, h, re] of cases) {
    it(name, () => {
      expect(() => decodeMessage(hex(h))).toThrowError(re);
      expect(() => decodeMessage(hex(h))).toThrowError(expect.objectContaining({ code: 'MALFORMED_MESSAGE' }));
    });
  }

  it('rejects a non-Uint8Array argument with INVALID_ARGUMENT', () => {
    expect(() => decodeMessage('40010001' as never)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('accepts an Empty ACK and an Empty CON (ping)', () => {
    expect(decodeMessage(hex('60001234'))).toMatchObject({ type: 2, code: 0, messageId: 0x1234 });
    expect(decodeMessage(hex('40001234'))).toMatchObject({ type: 0, code: 0 });
  });
});

describe('encodeMessage: validates at the boundary with INVALID_ARGUMENT', () => {
  const bad: Array<[string, Partial<CoapMessage>]> = [
    ['token of 9 bytes', { token: new Uint8Array(9) }],
    ['message ID 65536', { messageId: 65536 }],
    ['negative message ID', { messageId: -1 }],
    ['code 256', { code: 256 }],
    ['type 4', { type: 4 as never }],
    ['option number 65536', { options: [{ number: 65536, value: new Uint8Array(0) }] }],
    ['option value too long', { options: [{ number: 11, value: new Uint8Array(65536 + 269) }] }],
    ['Empty with token', { code: 0, token: hex('01') }],
  ];
  for (const [name, m] of bad) {
    it(name, () => {
      expect(() => encodeMessage(msg(m))).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    });
  }
});
