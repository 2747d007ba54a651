import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeMessage, encodeMessage, type CoapMessage, type CoapOption } from '../../src/codec/message.js';
import {
  Code,
  codeClass,
  codeToString,
  isCritical,
  isEmpty,
  isRequest,
  isResponse,
  isUnsafe,
  MessageType,
  OptionNumber as O,
} from '../../src/codec/numbers.js';
import {
  decodeUint,
  encodeUint,
  getOption,
  getOptions,
  hasOption,
  KNOWN_OPTIONS,
  OPTION_DEFINITIONS,
  stringOption,
  uintOption,
  unknownCriticalOptions,
  uriPath,
  validateOptions,
} from '../../src/codec/options.js';
import { hex, toHex } from './helpers.js';

const req = (options: CoapOption[]): CoapMessage => ({
  type: MessageType.CON,
  code: Code.GET,
  messageId: 1,
  token: new Uint8Array(0),
  options,
  payload: new Uint8Array(0),
});
const opt = (number: number, h = ''): CoapOption => ({ number, value: hex(h) });

describe('codes and option numbers (RFC 7252 §5.4.6, §12)', () => {
  it('renders codes in c.dd form', () => {
    expect(codeToString(Code.CONTENT)).toBe('2.05');
    expect(codeToString(Code.CONTINUE)).toBe('2.31');
    expect(codeToString(Code.BAD_OPTION)).toBe('4.02');
    expect(codeToString(Code.REQUEST_ENTITY_INCOMPLETE)).toBe('4.08');
    expect(codeToString(Code.PRECONDITION_FAILED)).toBe('4.12');
    expect(codeToString(Code.SERVICE_UNAVAILABLE)).toBe('5.03');
    expect(codeToString(Code.GET)).toBe('0.01');
    expect(codeToString(Code.EMPTY)).toBe('0.00');
  });

  it('classifies codes', () => {
    expect([Code.EMPTY, Code.GET, Code.CONTENT, Code.NOT_FOUND, Code.INTERNAL_SERVER_ERROR].map(codeClass)).toEqual([0, 0, 2, 4, 5]);
    expect(isEmpty(0)).toBe(true);
    expect(isRequest(Code.GET) && isRequest(Code.FETCH) && isRequest(31)).toBe(true);
    expect(isRequest(0) || isRequest(32) || isRequest(Code.CONTENT)).toBe(false);
    expect(isResponse(Code.CONTENT) && isResponse(Code.NOT_FOUND) && isResponse(0xbf)).toBe(true);
    expect(isResponse(Code.GET) || isResponse(0x20) || isResponse(0xc0)).toBe(false);
  });

  it('critical and unsafe bits', () => {
    // RFC 7252 Table 4: C and U columns.
    expect([O.IF_MATCH, O.URI_HOST, O.URI_PATH, O.BLOCK2, O.BLOCK1, O.PROXY_URI].every(isCritical)).toBe(true);
    expect([O.ETAG, O.OBSERVE, O.CONTENT_FORMAT, O.SIZE2, O.ECHO, O.REQUEST_TAG].some(isCritical)).toBe(false);
    expect([O.URI_HOST, O.URI_PORT, O.URI_PATH, O.URI_QUERY, O.BLOCK2, O.BLOCK1, O.PROXY_URI].every(isUnsafe)).toBe(true);
    expect([O.ETAG, O.CONTENT_FORMAT, O.SIZE2, O.SIZE1].some(isUnsafe)).toBe(false);
    expect(isUnsafe(O.MAX_AGE)).toBe(true); // Table 4: Max-Age is U
  });
});

describe('uint option values (RFC 7252 §3.2)', () => {
  const table: Array<[number, string]> = [
    [0, ''],
    [1, '01'],
    [255, 'ff'],
    [256, '0100'],
    [65535, 'ffff'],
    [65536, '010000'],
    [0xffffff, 'ffffff'],
    [0x1000000, '01000000'],
    [0xffffffff, 'ffffffff'],
  ];
  for (const [n, h] of table) {
    it(`${n} <-> ${h || '(empty)'}`, () => {
      expect(toHex(encodeUint(n))).toBe(h);
      expect(decodeUint(hex(h))).toBe(n);
    });
  }

  it('accepts leading zeros, rejects values over 4 bytes and bad inputs', () => {
    expect(decodeUint(hex('0000002a'))).toBe(42);
    expect(() => decodeUint(hex('0100000000'))).toThrowError(expect.objectContaining({ code: 'BAD_OPTION' }));
    for (const n of [-1, 0.5, 2 ** 32, NaN]) {
      expect(() => encodeUint(n)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('round-trips (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        const v = encodeUint(n);
        expect(v.length === 0 || v[0] !== 0).toBe(true); // minimal length
        expect(decodeUint(v)).toBe(n);
      }),
    );
  });

  it('encodeUint(0) returns a fresh array each time', () => {
    expect(encodeUint(0)).not.toBe(encodeUint(0));
  });
});

describe('option accessors', () => {
  const m = decodeMessage(
    encodeMessage(req([stringOption(O.URI_PATH, 'a'), uintOption(O.BLOCK2, 0x16), stringOption(O.URI_PATH, 'é'), opt(O.ETAG, '01')])),
  );
  it('getOption / getOptions / hasOption', () => {
    expect(toHex(getOption(m, O.URI_PATH)!)).toBe('61');
    expect(getOptions(m, O.URI_PATH).map(toHex)).toEqual(['61', 'c3a9']);
    expect(hasOption(m, O.ETAG)).toBe(true);
    expect(hasOption(m, O.IF_MATCH)).toBe(false);
    expect(getOptions(m, O.IF_MATCH)).toEqual([]);
    expect(uriPath(m)).toEqual(['a', 'é']);
  });

  it('uriPath rejects invalid UTF-8 with BAD_OPTION', () => {
    expect(() => uriPath(req([opt(O.URI_PATH, 'c3')]))).toThrowError(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => uriPath(req([opt(O.URI_PATH, 'ff')]))).toThrowError(/UTF-8/);
  });
});

describe('unknownCriticalOptions (RFC 7252 §5.4.1)', () => {
  it('lists unknown critical options once, ignores elective ones', () => {
    const m = decodeMessage(encodeMessage(req([opt(O.URI_PATH, '61'), opt(9), opt(9), opt(2), opt(65001), opt(2049, '00')])));
    expect(unknownCriticalOptions(m, KNOWN_OPTIONS)).toEqual([9, 2049, 65001]);
    expect(unknownCriticalOptions(m, new Set([9, 11, 65001, 2049]))).toEqual([]);
  });
});

describe('validateOptions (RFC 7252 §5.4.3, §5.4.5)', () => {
  const bad: Array<[string, CoapOption[], RegExp]> = [
    ['Uri-Path longer than 255', [{ number: O.URI_PATH, value: new Uint8Array(256) }], /Uri-Path \(11\): length 256/],
    ['Uri-Host empty', [opt(O.URI_HOST)], /Uri-Host/],
    ['Block2 of 4 bytes', [opt(O.BLOCK2, '00000016')], /Block2 \(23\): length 4/],
    ['Block1 of 4 bytes', [opt(O.BLOCK1, '00000016')], /Block1/],
    ['If-None-Match with a value', [opt(O.IF_NONE_MATCH, '00')], /If-None-Match/],
    ['If-Match of 9 bytes', [opt(O.IF_MATCH, '000000000000000000')], /If-Match/],
    ['Uri-Port of 3 bytes', [opt(O.URI_PORT, '000001')], /Uri-Port/],
    ['Accept of 3 bytes', [opt(O.ACCEPT, '000001')], /Accept/],
    ['Block2 repeated', [opt(O.BLOCK2, '06'), opt(O.BLOCK2, '16')], /Block2 \(23\): must not be repeated/],
    ['Uri-Host repeated', [opt(O.URI_HOST, '61'), opt(O.URI_HOST, '62')], /Uri-Host.*repeated/],
  ];
  for (const [name, options, re] of bad) {
    it(`rejects ${name} with BAD_OPTION`, () => {
      expect(() => validateOptions(req(options))).toThrowError(re);
      expect(() => validateOptions(req(options))).toThrowError(expect.objectContaining({ code: 'BAD_OPTION' }));
    });
  }

  it('accepts well-formed and repeatable options, ignores bad elective ones', () => {
    const ok = [
      opt(O.IF_MATCH),
      opt(O.ETAG, '01'),
      opt(O.ETAG, '02'), // ETag repeatable in requests
      opt(O.URI_PATH),
      opt(O.URI_PATH, '61'),
      opt(O.BLOCK2, 'ffffff'),
      opt(O.Q_BLOCK2, '06'),
      opt(O.Q_BLOCK2, '16'),
      opt(O.SIZE2, '0000000001'), // elective, 5 bytes: treated as unrecognized, not an error
      opt(O.ECHO, ''), // elective, 0 bytes: likewise
      opt(O.REQUEST_TAG),
    ];
    expect(() => validateOptions(req(ok))).not.toThrow();
  });

  it('every definition has a sane length range', () => {
    for (const [n, d] of OPTION_DEFINITIONS) {
      expect(d.minLength, d.name).toBeLessThanOrEqual(d.maxLength);
      if (d.format === 'uint') expect(d.maxLength, d.name).toBeLessThanOrEqual(4);
      expect(KNOWN_OPTIONS.has(n)).toBe(true);
    }
  });
});
