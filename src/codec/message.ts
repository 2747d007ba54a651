/**
 * CoAP message encode/decode (RFC 7252 §3).
 *
 * The decoder is strict: any message format error listed in RFC 7252 §3 and
 * §4.1 throws `CoapfwError('MALFORMED_MESSAGE')` and nothing else. The encoder
 * validates its input once and writes into a single allocation.
 */
import { CoapfwError } from '../errors.js';
import { allocBytes, EMPTY } from './bytes.js';
import type { MessageType } from './numbers.js';

export type { MessageType } from './numbers.js';

/** One option instance: number and raw value bytes. */
export interface CoapOption {
  readonly number: number;
  readonly value: Uint8Array;
}

/** A CoAP message as carried in one UDP/DTLS datagram (RFC 7252 §3). */
export interface CoapMessage {
  readonly type: MessageType;
  /** Code byte: `class << 5 | detail` (0x45 is 2.05). */
  readonly code: number;
  /** Message ID, 0..65535. */
  readonly messageId: number;
  /** Token, 0..8 bytes. */
  readonly token: Uint8Array;
  /**
   * Options sorted ascending by number, repeated options in their order.
   * `decodeMessage` returns them sorted; `encodeMessage` sorts stably.
   */
  readonly options: readonly CoapOption[];
  /** Payload; empty when the message has none. */
  readonly payload: Uint8Array;
}

/** Fixed header fields, readable even from a datagram that fails to decode. */
export interface CoapHeader {
  readonly version: number;
  readonly type: MessageType;
  readonly tokenLength: number;
  readonly code: number;
  readonly messageId: number;
}

/** Largest option value that the 2-byte extended length can express (RFC 7252 §3.1). */
export const MAX_OPTION_VALUE_LENGTH = 65535 + 269;
/** Largest token length (RFC 7252 §3: TKL 9..15 are reserved). */
export const MAX_TOKEN_LENGTH = 8;


const malformed = (msg: string): CoapfwError => new CoapfwError('MALFORMED_MESSAGE', `coap message: ${msg}`);
const invalid = (msg: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `encodeMessage: ${msg}`);

/**
 * Read the 4-byte fixed header without validating the rest, so that a
 * message layer can answer a malformed CON with RST (RFC 7252 §4.2).
 * Returns undefined when the datagram is shorter than 4 bytes.
 */
export function peekHeader(data: Uint8Array): CoapHeader | undefined {
  if (data.length < 4) return undefined;
  const b0 = data[0]!;
  return {
    version: b0 >> 6,
    type: ((b0 >> 4) & 3) as MessageType,
    tokenLength: b0 & 0x0f,
    code: data[1]!,
    messageId: (data[2]! << 8) | data[3]!,
  };
}

/**
 * Decode one datagram. Throws `CoapfwError('MALFORMED_MESSAGE')` on any
 * message format error: fewer than 4 bytes, version != 1, TKL 9..15, a
 * truncated token, option delta/length nibble 15 outside the payload marker,
 * extended delta/length or option value past the end, option number above
 * 65535, a payload marker followed by no payload, and an Empty message (0.00)
 * carrying a token, options or payload (RFC 7252 §3, §4.1).
 *
 * The returned token, option values and payload are views into one private
 * copy of `data`, so the caller may reuse `data` and keep the message. With
 * `{ copy: false }` they are views into `data` itself: for a caller that
 * hands over a buffer it will neither reuse nor change (a datagram fresh from
 * the socket), which saves an allocation and a copy per message.
 *
 * @example decodeMessage(Uint8Array.of(0x40, 0x01, 0x12, 0x34)) // CON GET, MID 0x1234
 */
export function decodeMessage(data: Uint8Array, how?: DecodeOptions): CoapMessage {
  if (!(data instanceof Uint8Array)) throw new CoapfwError('INVALID_ARGUMENT', 'decodeMessage: expected a Uint8Array');
  const len = data.length;
  if (len < 4) throw malformed(`datagram of ${len} bytes is shorter than the 4-byte header`);
  const b0 = data[0]!;
  const version = b0 >> 6;
  if (version !== 1) throw malformed(`version ${version}, expected 1`);
  const tkl = b0 & 0x0f;
  if (tkl > MAX_TOKEN_LENGTH) throw malformed(`token length ${tkl} is reserved (9..15)`);
  const code = data[1]!;
  if (code === 0 && (tkl !== 0 || len !== 4)) {
    throw malformed('Empty message (0.00) must have no token, options or payload');
  }
  if (4 + tkl > len) throw malformed(`token of ${tkl} bytes runs past the end of the datagram`);

  // One copy (unless the caller gave the buffer away): every value below is a view into it (RFC 7252 §3 layout).
  const buf = how?.copy === false ? data : copyOf(data);
  const token = tkl === 0 ? EMPTY : buf.subarray(4, 4 + tkl);
  const options: CoapOption[] = [];
  let payload = EMPTY;
  let pos = 4 + tkl;
  let number = 0;
  while (pos < len) {
    const byte = buf[pos++]!;
    if (byte === 0xff) {
      // RFC 7252 §3: a marker followed by a zero-length payload is a format error.
      if (pos === len) throw malformed('payload marker followed by no payload');
      payload = buf.subarray(pos, len);
      break;
    }
    let delta = byte >> 4;
    let length = byte & 0x0f;
    if (delta === 15) throw malformed(`option delta nibble 15 at offset ${pos - 1} (reserved)`);
    if (length === 15) throw malformed(`option length nibble 15 at offset ${pos - 1} (reserved)`);
    // RFC 7252 §3.1: 13 -> one extra byte minus 13, 14 -> two extra bytes minus 269.
    if (delta === 13) {
      if (pos + 1 > len) throw malformed('extended option delta runs past the end');
      delta = buf[pos++]! + 13;
    } else if (delta === 14) {
      if (pos + 2 > len) throw malformed('extended option delta runs past the end');
      delta = ((buf[pos]! << 8) | buf[pos + 1]!) + 269;
      pos += 2;
    }
    if (length === 13) {
      if (pos + 1 > len) throw malformed('extended option length runs past the end');
      length = buf[pos++]! + 13;
    } else if (length === 14) {
      if (pos + 2 > len) throw malformed('extended option length runs past the end');
      length = ((buf[pos]! << 8) | buf[pos + 1]!) + 269;
      pos += 2;
    }
    number += delta;
    if (number > 65535) throw malformed(`option number ${number} exceeds 65535`);
    if (pos + length > len) {
      throw malformed(`option ${number} value of ${length} bytes runs past the end of the datagram`);
    }
    options.push({ number, value: length === 0 ? EMPTY : buf.subarray(pos, pos + length) });
    pos += length;
  }
  return { type: ((b0 >> 4) & 3) as MessageType, code, messageId: (buf[2]! << 8) | buf[3]!, token, options, payload };
}

/** Options of {@link decodeMessage}. */
export interface DecodeOptions {
  /** Copy `data` first (default true); false: the message's views point into `data`, which the caller gives away. */
  readonly copy?: boolean;
}

function copyOf(data: Uint8Array): Uint8Array {
  const buf = allocBytes(data.length);
  buf.set(data);
  return buf;
}

/** Bytes an option header takes for a delta or length value (RFC 7252 §3.1). */
function extLen(n: number): number {
  return n < 13 ? 0 : n < 269 ? 1 : 2;
}

function nibble(n: number): number {
  return n < 13 ? n : n < 269 ? 13 : 14;
}

function sortedOptions(options: readonly CoapOption[]): readonly CoapOption[] {
  for (let i = 1; i < options.length; i++) {
    // Array.prototype.sort is stable (ES2019), so repeated options keep their order.
    if (options[i]!.number < options[i - 1]!.number) return [...options].sort((a, b) => a.number - b.number);
  }
  return options;
}

function validate(msg: CoapMessage): void {
  const { type, code, messageId, token, payload } = msg;
  if (type !== 0 && type !== 1 && type !== 2 && type !== 3) throw invalid(`type must be 0..3, got ${String(type)}`);
  if (!Number.isInteger(code) || code < 0 || code > 255) throw invalid(`code must be an integer 0..255, got ${code}`);
  if (!Number.isInteger(messageId) || messageId < 0 || messageId > 65535) {
    throw invalid(`messageId must be an integer 0..65535, got ${messageId}`);
  }
  if (!(token instanceof Uint8Array)) throw invalid('token must be a Uint8Array');
  if (token.length > MAX_TOKEN_LENGTH) throw invalid(`token must be 0..8 bytes, got ${token.length}`);
  if (!(payload instanceof Uint8Array)) throw invalid('payload must be a Uint8Array');
  if (code === 0 && (token.length > 0 || msg.options.length > 0 || payload.length > 0)) {
    throw invalid('an Empty message (0.00) cannot carry a token, options or payload (RFC 7252 §4.1)');
  }
  for (const o of msg.options) {
    if (!Number.isInteger(o.number) || o.number < 0 || o.number > 65535) {
      throw invalid(`option number must be an integer 0..65535, got ${o.number}`);
    }
    if (!(o.value instanceof Uint8Array)) throw invalid(`option ${o.number} value must be a Uint8Array`);
    if (o.value.length > MAX_OPTION_VALUE_LENGTH) {
      throw invalid(`option ${o.number} value of ${o.value.length} bytes exceeds ${MAX_OPTION_VALUE_LENGTH}`);
    }
  }
}

/**
 * Encode a message into one freshly allocated Uint8Array. Options are sorted
 * stably by number. Throws `CoapfwError('INVALID_ARGUMENT')` on out-of-range
 * fields: type, code, message ID, token longer than 8 bytes, option number
 * or value length, or an Empty message that carries anything.
 */
export function encodeMessage(msg: CoapMessage): Uint8Array {
  validate(msg);
  const options = sortedOptions(msg.options);
  const tkl = msg.token.length;
  // Pass 1: exact size, so that we allocate once.
  let size = 4 + tkl;
  let prev = 0;
  for (const o of options) {
    const delta = o.number - prev;
    const l = o.value.length;
    size += 1 + extLen(delta) + extLen(l) + l;
    prev = o.number;
  }
  if (msg.payload.length > 0) size += 1 + msg.payload.length;

  const out = allocBytes(size);
  out[0] = 0x40 | (msg.type << 4) | tkl;
  out[1] = msg.code;
  out[2] = msg.messageId >> 8;
  out[3] = msg.messageId & 0xff;
  out.set(msg.token, 4);
  let pos = 4 + tkl;
  prev = 0;
  for (const o of options) {
    const delta = o.number - prev;
    const l = o.value.length;
    out[pos++] = (nibble(delta) << 4) | nibble(l);
    pos = writeExt(out, pos, delta);
    pos = writeExt(out, pos, l);
    out.set(o.value, pos);
    pos += l;
    prev = o.number;
  }
  if (msg.payload.length > 0) {
    out[pos++] = 0xff;
    out.set(msg.payload, pos);
  }
  return out;
}

function writeExt(out: Uint8Array, pos: number, n: number): number {
  if (n < 13) return pos;
  if (n < 269) {
    out[pos] = n - 13;
    return pos + 1;
  }
  const v = n - 269;
  out[pos] = v >> 8;
  out[pos + 1] = v & 0xff;
  return pos + 2;
}
