/**
 * CoRE Link Format (RFC 6690), the payload of GET /.well-known/core.
 *
 * Grammar (RFC 6690 §2, parameters from RFC 8288):
 *   Link       = link-value *( "," link-value )
 *   link-value = "<" URI-Reference ">" *( ";" link-param )
 *   link-param = parmname [ "=" ( ptoken / quoted-string ) ]
 */
import { CoapfwError } from '../errors.js';

/** One link: target URI reference and attributes (a bare attribute is `true`). */
export interface Link {
  readonly target: string;
  readonly attributes: Readonly<Record<string, string | true>>;
}

// RFC 8288 §3: parmname = 1*attr-char (RFC 8187), plus "*" for extended parameters like title*.
const PARMNAME = /^[A-Za-z0-9!#$&+\-.^_`|~*]+$/;
// RFC 6690 §2: ptokenchar.
const PTOKEN = /^[!#$%&'()*+\-./0-9:<=>?@A-Z[\]^_`a-z{|}~]+$/;
const isPtokenChar = (ch: string): boolean => ch !== ',' && ch !== ';' && PTOKEN.test(ch);
// A target may hold any URI-reference character but not the closing ">" or whitespace/controls.
const BAD_TARGET = /[<>"\s\x00-\x1f\x7f]/;

function setAttr(attrs: Record<string, string | true>, name: string, value: string | true): void {
  // RFC 6690 §3: rt, if, sz "MUST NOT appear more than once"; keep the first of any repeat.
  if (Object.hasOwn(attrs, name)) return;
  // defineProperty so that a name like "__proto__" is stored as data.
  Object.defineProperty(attrs, name, { value, enumerable: true, writable: true, configurable: true });
}

function quote(v: string): string {
  return `"${v.replace(/["\\]/g, (ch) => `\\${ch}`)}"`;
}

/**
 * Serialize links to RFC 6690 text. Numeric values (sz=12, ct=42) are written
 * bare, every other value quoted (rt="x"). Throws INVALID_ARGUMENT for a
 * target containing "<", ">", a quote or whitespace, or a bad attribute name.
 *
 * @example formatLinks([{ target: '/a', attributes: { rt: 'x', sz: '12', obs: true } }]) // '</a>;rt="x";sz=12;obs'
 */
export function formatLinks(links: readonly Link[]): string {
  const parts: string[] = [];
  for (const link of links) {
    if (typeof link.target !== 'string' || BAD_TARGET.test(link.target)) {
      throw new CoapfwError('INVALID_ARGUMENT', `formatLinks: bad target ${JSON.stringify(link.target)}`);
    }
    let s = `<${link.target}>`;
    for (const [name, value] of Object.entries(link.attributes)) {
      if (!PARMNAME.test(name)) throw new CoapfwError('INVALID_ARGUMENT', `formatLinks: bad attribute name ${JSON.stringify(name)}`);
      if (value === true) s += `;${name}`;
      else if (typeof value === 'string') s += `;${name}=${/^[0-9]+$/.test(value) ? value : quote(value)}`;
      else throw new CoapfwError('INVALID_ARGUMENT', `formatLinks: attribute ${name} must be a string or true`);
    }
    parts.push(s);
  }
  return parts.join(',');
}

/** A small cursor-based parser; every failure is BAD_LINK_FORMAT with the offset. */
class Parser {
  pos = 0;
  constructor(readonly text: string) {}

  fail(why: string): never {
    throw new CoapfwError('BAD_LINK_FORMAT', `link-format: ${why} at offset ${this.pos}`);
  }

  /** Optional whitespace: not in RFC 6690's grammar, but common in hand-written documents. */
  ows(): void {
    while (this.pos < this.text.length && /[ \t\r\n]/.test(this.text[this.pos]!)) this.pos++;
  }

  eat(ch: string): boolean {
    if (this.text[this.pos] !== ch) return false;
    this.pos++;
    return true;
  }

  linkValue(): Link {
    if (!this.eat('<')) this.fail('expected "<"');
    const end = this.text.indexOf('>', this.pos);
    if (end < 0) this.fail('unterminated "<"');
    const target = this.text.slice(this.pos, end);
    if (BAD_TARGET.test(target)) this.fail('bad character in target');
    this.pos = end + 1;
    const attributes: Record<string, string | true> = {};
    this.ows();
    while (this.eat(';')) {
      this.ows();
      const start = this.pos;
      while (this.pos < this.text.length && /[A-Za-z0-9!#$&+\-.^_`|~*]/.test(this.text[this.pos]!)) this.pos++;
      if (this.pos === start) this.fail('expected a parameter name');
      const name = this.text.slice(start, this.pos);
      setAttr(attributes, name, this.eat('=') ? this.value() : true);
      this.ows();
    }
    return { target, attributes };
  }

  value(): string {
    if (this.eat('"')) {
      // RFC 7230 §3.2.6 quoted-string with quoted-pair.
      let out = '';
      for (;;) {
        if (this.pos >= this.text.length) this.fail('unterminated quoted string');
        const ch = this.text[this.pos++]!;
        if (ch === '"') return out;
        if (ch === '\\') {
          if (this.pos >= this.text.length) this.fail('unterminated quoted string');
          out += this.text[this.pos++]!;
        } else {
          out += ch;
        }
      }
    }
    const start = this.pos;
    while (this.pos < this.text.length && isPtokenChar(this.text[this.pos]!)) this.pos++;
    if (this.pos === start) this.fail('expected a value');
    return this.text.slice(start, this.pos);
  }
}

/**
 * Parse RFC 6690 text. The empty string is an empty list. Whitespace around
 * "," and ";" is tolerated; repeated attributes keep their first value.
 * Throws `CoapfwError('BAD_LINK_FORMAT')` with the offset of the problem.
 */
export function parseLinks(text: string): Link[] {
  if (typeof text !== 'string') throw new CoapfwError('BAD_LINK_FORMAT', 'link-format: expected a string');
  const p = new Parser(text);
  const links: Link[] = [];
  p.ows();
  if (p.pos === text.length) return links;
  for (;;) {
    links.push(p.linkValue());
    p.ows();
    if (p.pos === text.length) return links;
    if (!p.eat(',')) p.fail('expected "," or ";"');
    p.ows();
  }
}

/**
 * RFC 6690 §4.1 query filtering of /.well-known/core: `query` is one Uri-Query
 * argument "name=value"; a trailing "*" matches by prefix; "href" matches the
 * target; space-separated attributes (rt, if, rel) match any of their values.
 * An undefined or empty query, or one without "=", returns all links.
 */
export function filterLinks(links: readonly Link[], query: string | undefined): Link[] {
  if (query === undefined || !query.includes('=')) return [...links];
  const eq = query.indexOf('=');
  const name = query.slice(0, eq);
  let want = query.slice(eq + 1);
  const prefix = want.endsWith('*');
  if (prefix) want = want.slice(0, -1);
  const matches = (v: string): boolean => (prefix ? v.startsWith(want) : v === want);
  return links.filter((l) => {
    if (name === 'href') return matches(l.target);
    if (!Object.hasOwn(l.attributes, name)) return false;
    const v = l.attributes[name];
    if (v === true || v === undefined) return prefix && want === '';
    return matches(v) || v.split(' ').some(matches);
  });
}
