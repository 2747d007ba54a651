/**
 * Request and response bodies of the server's own resources (device reports,
 * the update service's protocol): a map with text keys, in CBOR (Content-Format
 * 60, RFC 8949) or JSON (50, RFC 8259), chosen by the request's
 * Content-Format; without one, a body whose first byte is `{` is JSON and
 * anything else CBOR. Responses go back in the format the request's Accept
 * names (RFC 7252 §5.10.4), else in the request's own.
 *
 * CBOR from the network goes through suit/cbor.ts's bounded scan (depth,
 * lengths, item count, well-formedness, unique keys, valid UTF-8) before
 * cbor-x sees it, and tags are refused: cbor-x gives several of them meanings
 * of its own (dates, sets, shared references, records), and no body here has
 * a use for one.
 */
import { Code, ContentFormat, OptionNumber } from '../codec/numbers.js';
import { decodeUint, encodeUint, getOption } from '../codec/options.js';
import type { CoapMessage } from '../codec/message.js';
import { CoapfwError } from '../errors.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import { decodeCbor, encodeCbor, type CborLimits } from '../suit/cbor.js';

/** The two formats a body may be in. */
export type BodyFormat = 'cbor' | 'json';

/** A decoded body: the map (text keys; integer keys as their decimal text) and the format it came in. */
export interface DecodedBody {
  readonly map: Readonly<Record<string, unknown>>;
  readonly format: BodyFormat;
}

/** A body is a small map of scalars and byte strings: these bounds leave room for a little nesting and no more. */
const BODY_CBOR_LIMITS: CborLimits = { maxDepth: 4, maxArrayLength: 64, maxItems: 256 };
const textDecoder = new TextDecoder('utf-8', { fatal: true });
const textEncoder = new TextEncoder();
const OPEN_BRACE = 0x7b;

const bad = (what: string, why: string, cause?: unknown): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `${what}: ${why}`, cause === undefined ? undefined : { cause });

/** The format a request's body is in: by Content-Format, else by sniffing; 4.15 for any other format. */
export function bodyFormat(msg: CoapMessage, what: string): BodyFormat {
  const raw = getOption(msg, OptionNumber.CONTENT_FORMAT);
  if (raw === undefined) return msg.payload[0] === OPEN_BRACE ? 'json' : 'cbor';
  const cf = decodeUint(raw);
  if (cf === ContentFormat.CBOR) return 'cbor';
  if (cf === ContentFormat.JSON) return 'json';
  throw new CoapfwError('INVALID_ARGUMENT', `${what}: Content-Format ${cf} is neither CBOR (60) nor JSON (50)`, { responseCode: Code.UNSUPPORTED_CONTENT_FORMAT });
}

/**
 * Decode a request body into a map. An empty body is an empty map. Anything
 * that is not a map of the announced format is INVALID_ARGUMENT (4.00) with a
 * one-line reason labelled by `what`.
 */
export function decodeBody(msg: CoapMessage, what: string): DecodedBody {
  const format = bodyFormat(msg, what);
  const payload = msg.payload;
  if (payload.length === 0) return { map: {}, format };
  const value = format === 'json' ? parseJson(payload, what) : decodeCborBody(payload, what);
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) throw bad(what, 'expected a map');
  return { map: value as Record<string, unknown>, format };
}

function parseJson(payload: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(textDecoder.decode(payload));
  } catch (e) {
    throw bad(what, `not valid JSON (${(e as Error).message.slice(0, 60)})`, e);
  }
}

/**
 * CBOR through the bounded scan, tags refused; a top-level map becomes a
 * plain object (text keys as they are, integer keys as their decimal text,
 * other keys dropped), stored with defineProperty so that a key such as
 * "__proto__" is data, never the prototype.
 */
export function decodeCborBody(payload: Uint8Array, what: string): unknown {
  const noTags = (_depth: number, start: number): void => {
    if (payload[start]! >> 5 === 6) throw new CoapfwError('INVALID_ARGUMENT', `${what}: CBOR tag at byte ${start} (tags are not accepted)`);
  };
  let value: unknown;
  try {
    value = decodeCbor(payload, BODY_CBOR_LIMITS, what, noTags);
  } catch (e) {
    if (e instanceof CoapfwError && e.code === 'INVALID_ARGUMENT') throw e;
    throw bad(what, `not valid CBOR (${(e as Error).message.replace(`${what}: `, '').slice(0, 80)})`, e);
  }
  if (!(value instanceof Map)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of value) {
    if (typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint') {
      Object.defineProperty(out, String(k), { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/**
 * The format to answer `msg` in: its Accept when it has one (CBOR or JSON,
 * else NOT_ACCEPTABLE 4.06, RFC 7252 §5.10.4), else the request's body format
 * when it has a body, else CBOR.
 */
export function responseFormat(msg: CoapMessage, what: string): BodyFormat {
  const accept = getOption(msg, OptionNumber.ACCEPT);
  if (accept !== undefined) {
    const cf = decodeUint(accept);
    if (cf === ContentFormat.CBOR) return 'cbor';
    if (cf === ContentFormat.JSON) return 'json';
    throw new CoapfwError('INVALID_ARGUMENT', `${what}: can answer in CBOR (60) or JSON (50), not ${cf}`, { responseCode: Code.NOT_ACCEPTABLE });
  }
  return msg.payload.length > 0 ? bodyFormat(msg, what) : 'cbor';
}

/**
 * A response carrying `map` in `format`. Byte strings stay byte strings in
 * CBOR and become hex text in JSON; bigints become numbers when safe.
 */
export function bodyResponse(code: number, map: Readonly<Record<string, unknown>>, format: BodyFormat): ResponseSpec {
  const payload = format === 'json' ? textEncoder.encode(JSON.stringify(map, jsonValue)) : encodeCbor(toCborMap(map));
  const cf = format === 'json' ? ContentFormat.JSON : ContentFormat.CBOR;
  return { code, options: [{ number: OptionNumber.CONTENT_FORMAT, value: encodeUint(cf) }], payload };
}

function toCborMap(map: Readonly<Record<string, unknown>>): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [k, v] of Object.entries(map)) {
    if (v === undefined) continue;
    out.set(k, v instanceof Uint8Array ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);
  }
  return out;
}

function jsonValue(_key: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  // JSON.stringify hands Buffers to the replacer already converted by their toJSON.
  if (typeof v === 'object' && v !== null && (v as { type?: unknown }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) {
    return Buffer.from((v as { data: number[] }).data).toString('hex');
  }
  return v;
}
