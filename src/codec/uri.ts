/**
 * coap:// and coaps:// URIs (RFC 7252 §6, decomposition per §6.4).
 */
import { CoapfwError } from '../errors.js';
import type { CoapOption } from './message.js';
import { COAPS_PORT, COAP_PORT, OptionNumber } from './numbers.js';
import { stringOption } from './options.js';

/** A parsed coap/coaps URI; path and query are percent-decoded. */
export interface CoapUri {
  readonly scheme: 'coap' | 'coaps';
  /** Host, lower-cased; IPv6 literals without brackets ("::1"). */
  readonly host: string;
  readonly port: number;
  /** Uri-Path segments ("/a/b" -> ["a", "b"]; "/" or "" -> []). */
  readonly path: string[];
  /** Uri-Query arguments ("?a=1&b" -> ["a=1", "b"]). */
  readonly query: string[];
}

const bad = (uri: string, why: string, cause?: unknown): CoapfwError =>
  new CoapfwError('BAD_URI', `uri ${JSON.stringify(uri)}: ${why}`, cause === undefined ? undefined : { cause });

function decode(uri: string, s: string): string {
  try {
    return decodeURIComponent(s);
  } catch (cause) {
    throw bad(uri, `bad percent-encoding in ${JSON.stringify(s)}`, cause);
  }
}

// RFC 3986 §3.2.2: reg-name = *( unreserved / pct-encoded / sub-delims ); IPv4 fits it too.
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})+$/;
// IPv6 literal (loose: hex, colons, dots for embedded IPv4) with an optional zone "%25eth0" (RFC 6874).
const IPV6 = /^[0-9A-Fa-f:.]+(?:%25[A-Za-z0-9\-._~%]+)?$/;

/** RFC 3986 §5.2.4 dot-segment removal on the raw (still encoded) segments. */
function removeDots(segments: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..') out.pop();
      if (last) out.push('');
    } else {
      out.push(s);
    }
  }
  return out;
}

/**
 * Parse a coap:// or coaps:// URI following RFC 7252 §6.4: absolute URI, no
 * fragment, no userinfo, default ports 5683/5684, IPv6 literals in brackets,
 * percent-decoded path segments and query arguments. Throws
 * `CoapfwError('BAD_URI')`.
 *
 * @example parseCoapUri('coap://[::1]/fw/a?x=1') // { scheme: 'coap', host: '::1', port: 5683, path: ['fw','a'], query: ['x=1'] }
 */
export function parseCoapUri(uri: string): CoapUri {
  if (typeof uri !== 'string') throw new CoapfwError('BAD_URI', 'uri: expected a string');
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(#.*)?$/.exec(uri);
  if (m === null) throw bad(uri, 'not an absolute URI with an authority');
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'coap' && scheme !== 'coaps') throw bad(uri, `scheme must be coap or coaps, got ${scheme}`);
  // §6.4 step 4: a fragment makes the URI invalid for CoAP.
  if (m[5] !== undefined) throw bad(uri, 'fragments are not allowed (RFC 7252 §6.4)');
  const authority = m[2]!;
  if (authority.includes('@')) throw bad(uri, 'userinfo is not allowed (RFC 7252 §6.1)');

  let host: string;
  let portText: string | undefined;
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    if (close < 0) throw bad(uri, 'unterminated IPv6 literal');
    const literal = authority.slice(1, close);
    if (!IPV6.test(literal) || !literal.includes(':')) throw bad(uri, `bad IPv6 literal [${literal}]`);
    host = decode(uri, literal).toLowerCase();
    const rest = authority.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) throw bad(uri, `unexpected ${JSON.stringify(rest)} after IPv6 literal`);
    portText = rest === '' ? undefined : rest.slice(1);
  } else {
    const colon = authority.lastIndexOf(':');
    const name = colon < 0 ? authority : authority.slice(0, colon);
    portText = colon < 0 ? undefined : authority.slice(colon + 1);
    if (!REG_NAME.test(name)) throw bad(uri, name === '' ? 'missing host' : `bad host ${JSON.stringify(name)}`);
    host = decode(uri, name).toLowerCase();
  }

  let port = scheme === 'coaps' ? COAPS_PORT : COAP_PORT;
  if (portText !== undefined && portText !== '') {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(uri, `bad port ${JSON.stringify(portText)}`);
    port = Number(portText);
  }

  const rawPath = m[3]!;
  // §6.4 step 8: an empty path or "/" yields no Uri-Path option.
  const path =
    rawPath === '' || rawPath === '/' ? [] : removeDots(rawPath.slice(1).split('/')).map((s) => decode(uri, s));
  const rawQuery = m[4];
  const query = rawQuery === undefined || rawQuery === '' ? [] : rawQuery.split('&').map((s) => decode(uri, s));
  return { scheme, host, port, path, query };
}

/** Uri-Path then Uri-Query options for a parsed URI (no Uri-Host/Uri-Port: callers add them when needed). */
export function uriOptions(uri: Pick<CoapUri, 'path' | 'query'>): CoapOption[] {
  return [
    ...uri.path.map((s) => stringOption(OptionNumber.URI_PATH, s)),
    ...uri.query.map((s) => stringOption(OptionNumber.URI_QUERY, s)),
  ];
}

const encSeg = (s: string): string =>
  s === '.' || s === '..'
    ? s.replace(/\./g, '%2E') // a literal dot segment would be removed on parse (RFC 3986 §5.2.4)
    : encodeURIComponent(s).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * Format a URI from its parts, percent-encoding path segments and query
 * arguments. A path of one empty segment cannot be expressed (RFC 7252 §6.5)
 * and formats as "/", which parses back to no segments.
 */
export function formatCoapUri(uri: CoapUri): string {
  const host = uri.host.includes(':') ? `[${uri.host.replace(/%/g, '%25')}]` : uri.host;
  const defaultPort = uri.scheme === 'coaps' ? COAPS_PORT : COAP_PORT;
  const port = uri.port === defaultPort ? '' : `:${uri.port}`;
  const path = uri.path.map((s) => `/${encSeg(s)}`).join('');
  const query = uri.query.length > 0 ? `?${uri.query.map((q) => encSeg(q).replace(/%3D/g, '=')).join('&')}` : '';
  return `${uri.scheme}://${host}${port}${path}${query}`;
}
