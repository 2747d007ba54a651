/**
 * Bodies of the update service's device protocol (registrations, reports,
 * their answers): maps with text keys in CBOR (Content-Format 60) or JSON
 * (50). Read by the request's Content-Format (absent: CBOR, or JSON when the
 * body starts with `{`), answered in the request's format or by Accept.
 * Network CBOR goes through suit/cbor.ts's bounded scan before cbor-x, and
 * tags are refused (cbor-x gives several of them meanings of its own).
 */
import { ContentFormat, OptionNumber } from '../codec/numbers.js';
import type { CoapMessage } from '../codec/message.js';
import { decodeUint, getOption } from '../codec/options.js';
import { CoapfwError } from '../errors.js';
import { decodeCbor, encodeCbor, type CborLimits } from '../suit/cbor.js';

const LIMITS: CborLimits = { maxDepth: 4, maxArrayLength: 64, maxItems: 256 };
const text = new TextDecoder('utf-8', { fatal: true });

/** The Content-Format of a request (undefined when absent or malformed). */
export function contentFormatOf(msg: CoapMessage): number | undefined {
  const raw = getOption(msg, OptionNumber.CONTENT_FORMAT);
  if (raw === undefined) return undefined;
  try {
    return decodeUint(raw);
  } catch {
    return undefined;
  }
}

/** The format to answer `msg` in: its Accept, else its Content-Format, else CBOR. */
export function answerFormat(msg: CoapMessage): number {
  const raw = getOption(msg, OptionNumber.ACCEPT);
  const accept = raw === undefined ? undefined : decodeUint(raw);
  if (accept === ContentFormat.JSON || accept === ContentFormat.CBOR) return accept;
  return contentFormatOf(msg) === ContentFormat.JSON ? ContentFormat.JSON : ContentFormat.CBOR;
}

/** Decode a body as a map; INVALID_ARGUMENT (4.00) for anything else. */
export function decodeBody(payload: Uint8Array, contentFormat: number | undefined): Record<string, unknown> {
  const json = contentFormat === ContentFormat.JSON || (contentFormat === undefined && payload[0] === 0x7b);
  if (contentFormat !== undefined && contentFormat !== ContentFormat.JSON && contentFormat !== ContentFormat.CBOR) {
    throw new CoapfwError('INVALID_ARGUMENT', `body: Content-Format ${contentFormat} is neither CBOR (60) nor JSON (50)`);
  }
  let value: unknown;
  try {
    value = json ? JSON.parse(text.decode(payload)) : fromCbor(payload);
  } catch (e) {
    throw new CoapfwError('INVALID_ARGUMENT', `body: not valid ${json ? 'JSON' : 'CBOR'}`, { cause: e });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CoapfwError('INVALID_ARGUMENT', 'body: expected a map');
  return value as Record<string, unknown>;
}

/** Encode a map in `format` (CBOR or JSON); bigints become numbers when exact. */
export function encodeBody(value: Readonly<Record<string, unknown>>, format: number): Uint8Array {
  if (format === ContentFormat.JSON) return new TextEncoder().encode(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? Number(v) : v)));
  return encodeCbor(new Map(Object.entries(value)));
}

/** A non-negative integer member, or undefined when absent; INVALID_ARGUMENT when of another type. */
export function uintMember(body: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw new CoapfwError('INVALID_ARGUMENT', `body: "${key}" must be an unsigned integer`);
  return n;
}

function fromCbor(payload: Uint8Array): Record<string, unknown> | unknown {
  const noTags = (_depth: number, start: number): void => {
    if (payload[start]! >> 5 === 6) throw new CoapfwError('INVALID_ARGUMENT', `body: CBOR tag at byte ${start} (tags are not accepted)`);
  };
  const value = decodeCbor(payload, LIMITS, 'body', noTags);
  if (!(value instanceof Map)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of value) {
    // defineProperty: a key such as "__proto__" is stored as data, never as the prototype.
    if (typeof k === 'string') Object.defineProperty(out, k, { value: v instanceof Map ? Object.fromEntries(v) : v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
