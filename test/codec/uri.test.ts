import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { formatCoapUri, parseCoapUri, uriOptions, type CoapUri } from '../../src/codec/uri.js';
import { pathOptions, queryOptions } from '../../src/codec/options.js';
import { OptionNumber } from '../../src/codec/numbers.js';
import { isCoapfwError } from '../../src/errors.js';

describe('parseCoapUri (RFC 7252 §6.4)', () => {
  const ok: Array<[string, CoapUri]> = [
    ['coap://example.net/', { scheme: 'coap', host: 'example.net', port: 5683, path: [], query: [] }],
    ['coap://example.net', { scheme: 'coap', host: 'example.net', port: 5683, path: [], query: [] }],
    ['coaps://example.net/', { scheme: 'coaps', host: 'example.net', port: 5684, path: [], query: [] }],
    // RFC 7252 §6.3 equivalence examples
    ['coap://EXAMPLE.com:/%7Esensors/temp.xml', { scheme: 'coap', host: 'example.com', port: 5683, path: ['~sensors', 'temp.xml'], query: [] }],
    ['CoAP://127.0.0.1:61616/fw/sha256/ab?x=1&y', { scheme: 'coap', host: '127.0.0.1', port: 61616, path: ['fw', 'sha256', 'ab'], query: ['x=1', 'y'] }],
    ['coap://[::1]/a/b', { scheme: 'coap', host: '::1', port: 5683, path: ['a', 'b'], query: [] }],
    ['coaps://[2001:DB8::1]:7000/', { scheme: 'coaps', host: '2001:db8::1', port: 7000, path: [], query: [] }],
    ['coap://[fe80::1%25eth0]:1/', { scheme: 'coap', host: 'fe80::1%eth0', port: 1, path: [], query: [] }],
    ['coap://h/a%2Fb/%C3%A9/', { scheme: 'coap', host: 'h', port: 5683, path: ['a/b', 'é', ''], query: [] }],
    ['coap://h/a/./b/../c', { scheme: 'coap', host: 'h', port: 5683, path: ['a', 'c'], query: [] }],
    ['coap://h/a?', { scheme: 'coap', host: 'h', port: 5683, path: ['a'], query: [] }],
    ['coap://h?q=%26', { scheme: 'coap', host: 'h', port: 5683, path: [], query: ['q=&'] }],
  ];
  for (const [uri, want] of ok) it(uri, () => expect(parseCoapUri(uri)).toEqual(want));

  const bad = [
    'http://example.net/',
    'coap:/example.net/',
    'coap://example.net/#frag',
    'coap://user@example.net/',
    'coap:///path',
    'coap://[::1/',
    'coap://[::1]x/',
    'coap://[zz]/',
    'coap://h:65536/',
    'coap://h:12a/',
    'coap://h/%zz',
    'coap://h/?%E0%A4%A',
    '/relative',
  ];
  for (const uri of bad) {
    it(`rejects ${uri} with BAD_URI`, () => {
      expect(() => parseCoapUri(uri)).toThrowError(expect.objectContaining({ code: 'BAD_URI' }));
    });
  }

  it('builds Uri-Path and Uri-Query options', () => {
    const opts = uriOptions(parseCoapUri('coap://h/a/b?c=1'));
    expect(opts.map((o) => [o.number, Buffer.from(o.value).toString()])).toEqual([
      [OptionNumber.URI_PATH, 'a'],
      [OptionNumber.URI_PATH, 'b'],
      [OptionNumber.URI_QUERY, 'c=1'],
    ]);
    expect(pathOptions('/fw/a%2Fb').map((o) => Buffer.from(o.value).toString())).toEqual(['fw', 'a/b']);
    expect(pathOptions('/')).toEqual([]);
    expect(pathOptions('')).toEqual([]);
    expect(queryOptions('?a=1&b').map((o) => Buffer.from(o.value).toString())).toEqual(['a=1', 'b']);
    expect(() => pathOptions('/%')).toThrowError(expect.objectContaining({ code: 'BAD_URI' }));
  });

  it('formatCoapUri -> parseCoapUri round-trips (property)', () => {
    const seg = fc.string({ maxLength: 6 });
    const uri = fc.record({
      scheme: fc.constantFrom('coap' as const, 'coaps' as const),
      host: fc.constantFrom('127.0.0.1', '::1', 'example.net', 'fe80::1%eth0'),
      port: fc.integer({ min: 0, max: 65535 }),
      // A path of one empty segment cannot be expressed (RFC 7252 §6.5): "/" means no Uri-Path.
      path: fc.array(seg, { maxLength: 4 }).filter((p) => p.length !== 1 || p[0] !== ''),
      query: fc.array(seg, { maxLength: 3 }).filter((q) => q.length !== 1 || q[0] !== ''),
    });
    fc.assert(
      fc.property(uri, (u) => {
        expect(parseCoapUri(formatCoapUri(u))).toEqual(u);
      }),
    );
  });

  it('any string parses or throws BAD_URI (property)', () => {
    const unit = fc.constantFrom('c', 'o', 'a', 'p', 's', ':', '/', '[', ']', '%', '2', '5', 'e', '?', '&', '#', '@', '.', ' ', 'é');
    const s = fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit, maxLength: 40 }), fc.string({ unit, maxLength: 30 }).map((x) => `coap://${x}`));
    fc.assert(
      fc.property(s, (text) => {
        try {
          const u = parseCoapUri(text);
          expect(u.port).toBeGreaterThanOrEqual(0);
          expect(u.port).toBeLessThanOrEqual(65535);
        } catch (e) {
          expect(isCoapfwError(e, 'BAD_URI')).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
