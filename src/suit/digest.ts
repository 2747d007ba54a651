/**
 * SUIT_Digest computation (draft-ietf-suit-manifest-37 §8.3) on @noble/hashes.
 */
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { CoapfwError } from '../errors.js';
import { ALG } from './constants.js';
import type { SuitDigest } from './types.js';
import { bytesEqual } from './values.js';

const HASHES: ReadonlyMap<number, (b: Uint8Array) => Uint8Array> = new Map([
  [ALG.sha256, (b: Uint8Array) => sha256(b)],
  [-43, (b: Uint8Array) => sha384(b)], // COSE SHA-384 (RFC 9054)
  [-44, (b: Uint8Array) => sha512(b)], // COSE SHA-512 (RFC 9054)
]);

/** Hash `data` with a COSE hash algorithm (-16 SHA-256, -43 SHA-384, -44 SHA-512). */
export function computeDigest(alg: number, data: Uint8Array): SuitDigest {
  const h = HASHES.get(alg);
  if (!h) throw new CoapfwError('SUIT_UNSUPPORTED', `digest algorithm ${alg} is not supported (SHA-256 is -16)`);
  return { alg, bytes: h(data) };
}

/** True when `data` hashes to `d` (its algorithm must be supported). */
export function digestMatches(d: SuitDigest, data: Uint8Array): boolean {
  return bytesEqual(computeDigest(d.alg, data).bytes, d.bytes);
}

/**
 * Check fetched image bytes against the digest and size a plan carries
 * (condition-image-match, §8.4.9.2). Throws DIGEST_MISMATCH.
 */
export function checkImage(bytes: Uint8Array, expect: { digest?: SuitDigest; size?: number }): void {
  if (expect.size !== undefined && bytes.length !== expect.size) {
    throw new CoapfwError('DIGEST_MISMATCH', `image-match: image is ${bytes.length} bytes, the manifest says ${expect.size}`);
  }
  if (!expect.digest) throw new CoapfwError('CONDITION_FAILED', 'image-match: the manifest sets no image digest');
  if (!digestMatches(expect.digest, bytes)) {
    throw new CoapfwError('DIGEST_MISMATCH', 'image-match: image digest differs from the manifest');
  }
}
