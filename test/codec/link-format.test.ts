import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { filterLinks, formatLinks, parseLinks, type Link } from '../../src/codec/link-format.js';
import { isCoapfwError } from '../../src/errors.js';

describe('link format (RFC 6690)', () => {
  it('parses the RFC 6690 §5 example', () => {
    const text = '</sensors/temp>;if="sensor",</sensors/light>;if="sensor"';
    expect(parseLinks(text)).toEqual([
      { target: '/sensors/temp', attributes: { if: 'sensor' } },
      { target: '/sensors/light', attributes: { if: 'sensor' } },
    ]);
  });

  it('parses the RFC 6690 §5 example with rt, ct, sz and bare attributes', () => {
    const text = '</sensors/temp>;rt="temperature-c";if="sensor";ct=0;sz=6;obs,</fw>;title="Firmware \\"A\\""';
    expect(parseLinks(text)).toEqual([
      { target: '/sensors/temp', attributes: { rt: 'temperature-c', if: 'sensor', ct: '0', sz: '6', obs: true } },
      { target: '/fw', attributes: { title: 'Firmware "A"' } },
    ]);
  });

  it('tolerates whitespace and line breaks between links, keeps the first repeated attribute', () => {
    expect(parseLinks(' </a> ;rt=x ,\n</b>;rt="1";rt="2" ')).toEqual([
      { target: '/a', attributes: { rt: 'x' } },
      { target: '/b', attributes: { rt: '1' } },
    ]);
    expect(parseLinks('')).toEqual([]);
  });

  it('formats like the contract example', () => {
    expect(formatLinks([{ target: '/a', attributes: { rt: 'x', sz: '12', ct: '42' } }, { target: '/b', attributes: {} }])).toBe(
      '</a>;rt="x";sz=12;ct=42,</b>',
    );
    expect(formatLinks([{ target: '/c', attributes: { title: 'a"b\\c', obs: true } }])).toBe('</c>;title="a\\"b\\\\c";obs');
  });

  it('stores "__proto__" as a plain attribute', () => {
    const [l] = parseLinks('</a>;__proto__=1');
    expect(Object.getPrototypeOf(l!.attributes)).toBe(Object.prototype);
    expect(Object.keys(l!.attributes)).toEqual(['__proto__']);
  });

  const bad = ['<a', '/a', '</a>;', '</a>;=x', '</a>;rt=', '</a>;rt="x', '</a>,', '</a> </b>', '</a>;rt=x;ct=1 2', '<a b>'];
  for (const text of bad) {
    it(`rejects ${JSON.stringify(text)} with BAD_LINK_FORMAT`, () => {
      expect(() => parseLinks(text)).toThrowError(expect.objectContaining({ code: 'BAD_LINK_FORMAT' }));
    });
  }

  it('formatLinks rejects bad targets and attribute names', () => {
    for (const l of [
      { target: '/a>', attributes: {} },
      { target: '/a b', attributes: {} },
      { target: '/a', attributes: { 'r t': 'x' } },
      { target: '/a', attributes: { '': 'x' } },
    ]) {
      expect(() => formatLinks([l])).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('filters per RFC 6690 §4.1', () => {
    const links = parseLinks('</fw/a>;rt="firmware image";sz=1000,</fw/b>;rt="firmware";obs,</status>;rt="status"');
    const targets = (q: string | undefined): string[] => filterLinks(links, q).map((l) => l.target);
    expect(targets(undefined)).toEqual(['/fw/a', '/fw/b', '/status']);
    expect(targets('rt=firmware')).toEqual(['/fw/a', '/fw/b']);
    expect(targets('rt=image')).toEqual(['/fw/a']);
    expect(targets('rt=stat*')).toEqual(['/status']);
    expect(targets('href=/fw/*')).toEqual(['/fw/a', '/fw/b']);
    expect(targets('sz=1000')).toEqual(['/fw/a']);
    expect(targets('obs=*')).toEqual(['/fw/b']);
    expect(targets('ct=0')).toEqual([]);
  });

  const name = fc.stringMatching(/^[a-z][a-z0-9*._-]{0,8}$/);
  const value = fc.oneof(fc.constant(true as const), fc.string({ maxLength: 12 }), fc.nat().map(String));
  const link: fc.Arbitrary<Link> = fc.record({
    target: fc.stringMatching(/^\/?[A-Za-z0-9._~\-/%?=&:]{0,20}$/),
    attributes: fc.dictionary(name, value, { maxKeys: 4 }),
  });

  it('round-trips formatLinks -> parseLinks (property)', () => {
    fc.assert(fc.property(fc.array(link, { maxLength: 5 }), (links) => {
      expect(parseLinks(formatLinks(links))).toEqual(links);
    }));
  });

  it('parseLinks returns links or throws BAD_LINK_FORMAT on arbitrary text (property)', () => {
    const alphabet = fc.constantFrom('<', '>', ';', ',', '"', '\\', '=', ' ', 'a', '1', '/', '*');
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 40 }), fc.string({ unit: alphabet, maxLength: 40 })), (text) => {
      try {
        parseLinks(text);
      } catch (e) {
        expect(isCoapfwError(e, 'BAD_LINK_FORMAT')).toBe(true);
      }
    }), { numRuns: 2000 });
  });
});
