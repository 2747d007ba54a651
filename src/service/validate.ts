/**
 * Input checks of the store's public boundary, once, with labelled messages
 * (INVALID_ARGUMENT): nothing reaches the database unchecked, so a bad
 * registration or report never leaves a half-written row.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { CoapfwError } from '../errors.js';
import { fromHex } from '../suit/values.js';

const bad = (msg: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', msg);

// The status tracker's device id rule (src/server/status.ts): safe in a URI path segment.
const ID = /^[A-Za-z0-9._:-]{1,64}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A device id: 1..64 of A-Z a-z 0-9 . _ : - */
export function checkDeviceId(v: unknown, what = 'device id'): string {
  if (typeof v !== 'string' || !ID.test(v)) throw bad(`${what}: expected 1..64 characters of A-Z a-z 0-9 . _ : -, got ${describe(v)}`);
  return v;
}

/** An identity, group or publisher name: 1..128 printable characters. */
export function checkName(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length < 1 || v.length > 128 || /[\u0000-\u001f\u007f]/.test(v)) {
    throw bad(`${what}: expected 1..128 printable characters, got ${describe(v)}`);
  }
  return v;
}

/** A vendor or class id (SUIT bytes: a UUID or an IANA PEN) as lower-case hex; dashes allowed on input. */
export function checkSuitId(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(`${what}: expected hex, got ${describe(v)}`);
  const bytes = fromHex(v, what);
  if (bytes.length < 1 || bytes.length > 32) throw bad(`${what}: expected 1..32 bytes, got ${bytes.length}`);
  return bytesToHex(bytes);
}

/** A SHA-256 digest as 64 lower-case hex digits (upper case accepted). */
export function checkSha256(v: unknown, what: string): string {
  const s = typeof v === 'string' ? v.toLowerCase() : v;
  if (typeof s !== 'string' || !SHA256_HEX.test(s)) throw bad(`${what}: expected 64 hex digits (SHA-256), got ${describe(v)}`);
  return s;
}

/** An integer in min..max (max at most Number.MAX_SAFE_INTEGER). */
export function checkInt(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw bad(`${what}: expected an integer ${min}..${max}, got ${describe(v)}`);
  }
  return v;
}

/** One of a fixed set of strings. */
export function checkOneOf<T extends string>(v: unknown, allowed: readonly T[], what: string): T {
  if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
    throw bad(`${what}: expected one of ${allowed.join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

/** Free text (a failure reason): at most `max` characters, control characters other than tab refused. */
export function checkText(v: unknown, what: string, max = 256): string {
  if (typeof v !== 'string' || v.length > max || /[\u0000-\u0008\u000a-\u001f\u007f]/.test(v)) {
    throw bad(`${what}: expected text of at most ${max} characters without control characters, got ${describe(v)}`);
  }
  return v;
}

/** A page size: 1..max, `fallback` when undefined. */
export function checkLimit(v: unknown, max: number, fallback = Math.min(100, max)): number {
  return v === undefined ? fallback : checkInt(v, 'limit', 1, max);
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v.length > 40 ? `${v.slice(0, 40)}...` : v}'`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return typeof v;
}
