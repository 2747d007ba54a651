/**
 * UUIDs as SUIT uses them for vendor and class ids (draft-ietf-suit-manifest-37
 * §8.4.8.2-3: a 16-byte RFC 9562 UUID in a bstr). One parser and one printer
 * for the library and the CLI.
 */
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { CoapfwError } from '../errors.js';

// RFC 9562 §4: 8-4-4-4-12 hex digits; the 32 digits without dashes are accepted too.
const CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const PLAIN = /^[0-9a-f]{32}$/i;

/**
 * The 16 bytes of a UUID written `fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe` (or the
 * same 32 hex digits without dashes). Anything else throws INVALID_ARGUMENT
 * with `label` in front of the message.
 *
 * @example
 * parseUuid('fa6b4a53-d5ad-5fdf-be9d-e663e4d41ffe', 'vendor-id'); // Uint8Array(16)
 */
export function parseUuid(text: string, label = 'uuid'): Uint8Array {
  if (typeof text !== 'string') throw new CoapfwError('INVALID_ARGUMENT', `${label}: expected a UUID string`);
  const s = text.trim();
  if (!CANONICAL.test(s) && !PLAIN.test(s)) {
    throw new CoapfwError('INVALID_ARGUMENT', `${label}: expected a UUID (8-4-4-4-12 hex digits, or 32 hex digits), got '${text.slice(0, 48)}'`);
  }
  return hexToBytes(s.replaceAll('-', '').toLowerCase());
}

/** 16 bytes as a canonical lower-case UUID; any other length as plain hex (it is not a UUID). */
export function formatUuid(bytes: Uint8Array): string {
  const h = bytesToHex(bytes);
  if (bytes.length !== 16) return h;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
