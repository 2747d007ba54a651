/**
 * Typed readers for decoded CBOR values, each throwing a labelled
 * SUIT_MALFORMED (or SUIT_LIMIT for integers beyond 2^53) on a wrong type.
 */
import { CoapfwError } from '../errors.js';
import type { SuitDigest } from './types.js';

export function malformed(msg: string): CoapfwError {
  return new CoapfwError('SUIT_MALFORMED', msg);
}

export function asMap(v: unknown, what: string): Map<unknown, unknown> {
  if (!(v instanceof Map)) throw malformed(`${what}: expected a map`);
  return v;
}

export function asArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw malformed(`${what}: expected an array`);
  return v;
}

export function asBytes(v: unknown, what: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw malformed(`${what}: expected a byte string`);
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

export function asText(v: unknown, what: string): string {
  if (typeof v !== 'string') throw malformed(`${what}: expected a text string`);
  return v;
}

export function asBool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw malformed(`${what}: expected true or false`);
  return v;
}

/** Any CBOR integer (cbor-x gives number, or bigint for 64-bit encodings). */
export function isInt(v: unknown): v is number | bigint {
  return typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v));
}

/** An unsigned integer as a bigint (up to 2^64 - 1). */
export function asBigUint(v: unknown, what: string): bigint {
  if (!isInt(v)) throw malformed(`${what}: expected an unsigned integer`);
  const b = BigInt(v);
  if (b < 0n) throw malformed(`${what}: expected an unsigned integer, got ${b}`);
  return b;
}

/** An integer that must fit a JS number exactly. */
export function asInt(v: unknown, what: string): number {
  if (!isInt(v)) throw malformed(`${what}: expected an integer`);
  if (typeof v === 'bigint') {
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new CoapfwError('SUIT_LIMIT', `${what}: integer ${v} is beyond 2^53`);
    }
    return Number(v);
  }
  if (!Number.isSafeInteger(v)) throw new CoapfwError('SUIT_LIMIT', `${what}: integer ${v} is beyond 2^53`);
  return v;
}

export function asUint(v: unknown, what: string): number {
  const n = asInt(v, what);
  if (n < 0) throw malformed(`${what}: expected an unsigned integer, got ${n}`);
  return n;
}

/** A map key as a number, or undefined for non-integer keys. */
export function intKey(k: unknown): number | undefined {
  if (typeof k === 'number' && Number.isSafeInteger(k)) return k;
  if (typeof k === 'bigint' && k <= BigInt(Number.MAX_SAFE_INTEGER) && k >= BigInt(Number.MIN_SAFE_INTEGER)) return Number(k);
  return undefined;
}

/** A map keyed by integers; entries with other keys are skipped (unknown keys, §8). */
export function intKeyed(v: unknown, what: string): Map<number, unknown> {
  const out = new Map<number, unknown>();
  for (const [k, val] of asMap(v, what)) {
    const n = intKey(k);
    if (n !== undefined) {
      if (out.has(n)) throw malformed(`${what}: duplicate key ${n}`);
      out.set(n, val);
    }
  }
  return out;
}

/** SUIT_Digest = [alg, bytes, * extensions] (§8.3). */
export function asDigest(v: unknown, what: string): SuitDigest {
  const a = asArray(v, what);
  if (a.length < 2) throw malformed(`${what}: SUIT_Digest needs an algorithm and bytes`);
  return { alg: asInt(a[0], `${what} algorithm`), bytes: asBytes(a[1], `${what} bytes`) };
}

/** Hex of bytes (lower case). */
export { bytesToHex as toHex } from '@noble/hashes/utils.js';

/** Bytes of a hex string (whitespace, colons, dashes and a 0x prefix allowed); throws INVALID_ARGUMENT. */
export function fromHex(hex: string, what: string): Uint8Array {
  const s = hex.trim().replace(/^0x/i, '').replace(/[\s:-]/g, '');
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) {
    throw new CoapfwError('INVALID_ARGUMENT', `${what}: expected hex, got '${hex.slice(0, 40)}'`);
  }
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Constant-time equality of two byte arrays. */
export { equalBytes as bytesEqual } from '@noble/curves/utils.js';
