/**
 * Option helpers and the option format registry (RFC 7252 §3.2, §5.4, §5.10).
 */
import { CoapfwError } from '../errors.js';
import { EMPTY } from './bytes.js';
import type { CoapMessage, CoapOption } from './message.js';
import { OptionNumber, isCritical } from './numbers.js';

/** RFC 7252 §3.2 option value formats. */
export type OptionFormat = 'empty' | 'opaque' | 'uint' | 'string';

/** Format, length range and repeatability of a known option (RFC 7252 §5.10 table 4). */
export interface OptionDefinition {
  readonly name: string;
  readonly format: OptionFormat;
  readonly minLength: number;
  readonly maxLength: number;
  readonly repeatable: boolean;
}

const def = (name: string, format: OptionFormat, minLength: number, maxLength: number, repeatable = false): OptionDefinition =>
  ({ name, format, minLength, maxLength, repeatable });

const N = OptionNumber;
/** Options this codec knows, keyed by number. */
export const OPTION_DEFINITIONS: ReadonlyMap<number, OptionDefinition> = new Map<number, OptionDefinition>([
  [N.IF_MATCH, def('If-Match', 'opaque', 0, 8, true)],
  [N.URI_HOST, def('Uri-Host', 'string', 1, 255)],
  [N.ETAG, def('ETag', 'opaque', 1, 8, true)], // repeatable in requests (§5.10.6.2)
  [N.IF_NONE_MATCH, def('If-None-Match', 'empty', 0, 0)],
  [N.OBSERVE, def('Observe', 'uint', 0, 3)], // RFC 7641 §2
  [N.URI_PORT, def('Uri-Port', 'uint', 0, 2)],
  [N.LOCATION_PATH, def('Location-Path', 'string', 0, 255, true)],
  [N.URI_PATH, def('Uri-Path', 'string', 0, 255, true)],
  [N.CONTENT_FORMAT, def('Content-Format', 'uint', 0, 2)],
  [N.MAX_AGE, def('Max-Age', 'uint', 0, 4)],
  [N.URI_QUERY, def('Uri-Query', 'string', 0, 255, true)],
  [N.ACCEPT, def('Accept', 'uint', 0, 2)],
  [N.Q_BLOCK1, def('Q-Block1', 'uint', 0, 3)], // RFC 9177 §4
  [N.LOCATION_QUERY, def('Location-Query', 'string', 0, 255, true)],
  [N.BLOCK2, def('Block2', 'uint', 0, 3)], // RFC 7959 §2.1
  [N.BLOCK1, def('Block1', 'uint', 0, 3)],
  [N.SIZE2, def('Size2', 'uint', 0, 4)],
  [N.Q_BLOCK2, def('Q-Block2', 'uint', 0, 3, true)], // RFC 9177 §4: repeatable in requests
  [N.PROXY_URI, def('Proxy-Uri', 'string', 1, 1034)],
  [N.PROXY_SCHEME, def('Proxy-Scheme', 'string', 1, 255)],
  [N.SIZE1, def('Size1', 'uint', 0, 4)],
  [N.ECHO, def('Echo', 'opaque', 1, 40)], // RFC 9175 §2.2.1
  [N.NO_RESPONSE, def('No-Response', 'uint', 0, 1)], // RFC 7967 §2
  [N.REQUEST_TAG, def('Request-Tag', 'opaque', 0, 8, true)], // RFC 9175 §3.2
]);

/** Option numbers this codec knows (the keys of OPTION_DEFINITIONS). */
export const KNOWN_OPTIONS: ReadonlySet<number> = new Set(OPTION_DEFINITIONS.keys());

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Value of the first option `n`, or undefined. */
export function getOption(msg: CoapMessage, n: number): Uint8Array | undefined {
  for (const o of msg.options) if (o.number === n) return o.value;
  return undefined;
}

/** Values of every option `n`, in message order. */
export function getOptions(msg: CoapMessage, n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const o of msg.options) if (o.number === n) out.push(o.value);
  return out;
}

/** True when the message carries option `n` at least once. */
export function hasOption(msg: CoapMessage, n: number): boolean {
  return getOption(msg, n) !== undefined;
}

/**
 * Minimal-length big-endian uint (RFC 7252 §3.2): 0 is the empty value.
 * Accepts integers 0..2^32-1; throws INVALID_ARGUMENT otherwise.
 */
export function encodeUint(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new CoapfwError('INVALID_ARGUMENT', `encodeUint: expected integer 0..4294967295, got ${n}`);
  }
  if (n === 0) return EMPTY.slice();
  if (n < 0x100) return Uint8Array.of(n);
  if (n < 0x10000) return Uint8Array.of(n >>> 8, n & 0xff);
  if (n < 0x1000000) return Uint8Array.of(n >>> 16, (n >>> 8) & 0xff, n & 0xff);
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/**
 * Decode a uint option value of 0..4 bytes (leading zero bytes allowed, RFC 7252 §3.2).
 * Longer values throw BAD_OPTION.
 */
export function decodeUint(v: Uint8Array): number {
  if (v.length > 4) throw new CoapfwError('BAD_OPTION', `uint option value of ${v.length} bytes exceeds 4`);
  let n = 0;
  for (let i = 0; i < v.length; i++) n = n * 256 + v[i]!;
  return n;
}

/** A string option (Uri-Path, Uri-Query, ...) from a JS string, UTF-8 encoded. */
export function stringOption(number: number, value: string): CoapOption {
  return { number, value: utf8Encoder.encode(value) };
}

/** A uint option with minimal-length encoding. */
export function uintOption(number: number, value: number): CoapOption {
  return { number, value: encodeUint(value) };
}

/**
 * A short all-ASCII value as a string (its UTF-8 decoding), else undefined.
 * Uri-Path segments are nearly always ASCII and are decoded once per request:
 * a loop is several times cheaper than a call into TextDecoder for them.
 */
function asciiString(v: Uint8Array): string | undefined {
  if (v.length > 64) return undefined;
  for (let i = 0; i < v.length; i++) if (v[i]! >= 0x80) return undefined;
  return String.fromCharCode.apply(null, v as unknown as number[]);
}

function decodeStrings(msg: CoapMessage, n: number, label: string): string[] {
  const out: string[] = [];
  for (const o of msg.options) {
    if (o.number !== n) continue;
    const ascii = asciiString(o.value);
    if (ascii !== undefined) {
      out.push(ascii);
      continue;
    }
    try {
      out.push(utf8Decoder.decode(o.value));
    } catch (cause) {
      throw new CoapfwError('BAD_OPTION', `${label}: value is not valid UTF-8`, { cause });
    }
  }
  return out;
}

/** Uri-Path segments, UTF-8 decoded (RFC 7252 §5.10.1). Invalid UTF-8 throws BAD_OPTION. */
export function uriPath(msg: CoapMessage): string[] {
  return decodeStrings(msg, OptionNumber.URI_PATH, 'Uri-Path');
}

/** Uri-Query arguments, UTF-8 decoded. Invalid UTF-8 throws BAD_OPTION. */
export function uriQuery(msg: CoapMessage): string[] {
  return decodeStrings(msg, OptionNumber.URI_QUERY, 'Uri-Query');
}

function percentDecode(s: string, label: string): string {
  try {
    return decodeURIComponent(s);
  } catch (cause) {
    throw new CoapfwError('BAD_URI', `${label}: bad percent-encoding in ${JSON.stringify(s)}`, { cause });
  }
}

/**
 * Uri-Path options for a path like "/fw/sha256/ab%2Fcd": split on "/",
 * percent-decode each segment (RFC 7252 §6.4 step 8). "" and "/" give no
 * options; "/a/" gives "a" and "". Bad percent-encoding throws BAD_URI.
 */
export function pathOptions(path: string): CoapOption[] {
  const p = path.startsWith('/') ? path.slice(1) : path;
  if (p === '') return [];
  return p.split('/').map((seg) => stringOption(OptionNumber.URI_PATH, percentDecode(seg, 'path')));
}

/**
 * Uri-Query options from a query string "a=1&b" (with or without the leading
 * "?"), each argument percent-decoded (RFC 7252 §6.4 step 9).
 */
export function queryOptions(query: string): CoapOption[] {
  const q = query.startsWith('?') ? query.slice(1) : query;
  if (q === '') return [];
  return q.split('&').map((arg) => stringOption(OptionNumber.URI_QUERY, percentDecode(arg, 'query')));
}

/**
 * Critical option numbers in `msg` that are not in `known`, in message order
 * without repeats. RFC 7252 §5.4.1: a server answers a CON request carrying
 * one with 4.02 (Bad Option); a NON is rejected silently.
 */
export function unknownCriticalOptions(msg: CoapMessage, known: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (const o of msg.options) {
    if (isCritical(o.number) && !known.has(o.number) && out[out.length - 1] !== o.number) out.push(o.number);
  }
  return out;
}

/**
 * Check known options against RFC 7252 §5.4.3 (length range), §5.4.5
 * (repeated non-repeatable option) and the uint width. A violation in a
 * critical option throws `CoapfwError('BAD_OPTION')` naming the option: the
 * server answers 4.02. Violations in elective options are, per the same
 * sections, treated like unrecognized elective options: ignored here.
 * String options are not checked for UTF-8 here (see uriPath).
 */
export function validateOptions(msg: CoapMessage): void {
  let prev = -1;
  for (const o of msg.options) {
    const d = OPTION_DEFINITIONS.get(o.number);
    const repeated = o.number === prev;
    prev = o.number;
    if (d === undefined || !isCritical(o.number)) continue;
    const l = o.value.length;
    if (l < d.minLength || l > d.maxLength) {
      throw new CoapfwError(
        'BAD_OPTION',
        `${d.name} (${o.number}): length ${l} outside ${d.minLength}..${d.maxLength} (RFC 7252 §5.4.3)`,
      );
    }
    if (repeated && !d.repeatable) {
      throw new CoapfwError('BAD_OPTION', `${d.name} (${o.number}): must not be repeated (RFC 7252 §5.4.5)`);
    }
  }
}
