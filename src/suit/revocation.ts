/**
 * Revocation without a clock: a signed list of revoked keys with a sequence
 * number, a trust document of kind 2.
 *
 * ```cddl
 * revocation-body = {
 *   1: sequence: uint,               ; >= 1, strictly increasing per issuer
 *   2: revoked: [* bstr .size 32],   ; RFC 9679 COSE Key Thumbprints (SHA-256), strictly ascending
 * }
 * ```
 * Who may sign it: the role of the trust pseudo-component of the device's
 * current trust set (threshold of its signers), keys already revoked not
 * counting, so a stolen key can never sign its own un-revocation.
 *
 * Once a device holds list N it never accepts a list below N, and accepts
 * list N again only byte for byte (the same body digest): two different
 * lists under one number are REVOCATION_CONFLICT, evidence that the
 * issuer's keys signed twice. A newer list replaces the older one (it is a
 * complete list, like a CRL, so a mistaken revocation can be undone by the
 * trust role). A revoked key counts for nothing anywhere: manifests, trust
 * updates, revocation lists. The owner key is not an anchor and is never
 * subject to the list: a vendor cannot lock the owner out by listing it.
 *
 * What no list can do without a clock: tell a device that a newer list
 * exists. See README, "What a device without a clock cannot detect".
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { CoapfwError } from '../errors.js';
import { bstr, decodeCbor, encodeCbor } from './cbor.js';
import { TRUST_KIND } from './constants.js';
import type { SuitPrivateKey, SuitPublicKey } from './keys.js';
import { suitLimits } from './limits.js';
import { strictMembers } from './trust-codec.js';
import { decodeTrustDocument, encodeTrustDocument, matchTrustDocument, signTrustDocument, type TrustDocument } from './trust-document.js';
import { requireRole, tallyRole } from './trust-match.js';
import { checkTrustState, keyThumbprint, trustLimits, trustRole, type TrustLimits, type TrustState } from './trust-set.js';
import { asArray, asBytes, asUint, bytesEqual, malformed, toHex } from './values.js';

/** What a revocation list says. */
export interface RevocationList {
  readonly sequence: number;
  /** Thumbprints of the revoked keys, strictly ascending. */
  readonly revoked: readonly Uint8Array[];
}

function compare(a: Uint8Array, b: Uint8Array): number {
  return toHex(a) < toHex(b) ? -1 : toHex(a) > toHex(b) ? 1 : 0;
}

/**
 * Create a revocation list revoking `keys` (public keys, or their RFC 9679
 * thumbprints), signed by each of `signers` (none: an unsigned document for
 * `signTrustDocument`).
 */
export function createRevocationList(
  list: { readonly sequence: number; readonly revoked: readonly (SuitPublicKey | Uint8Array)[] },
  signers: readonly SuitPrivateKey[] = [],
  limits?: Partial<TrustLimits>,
): Uint8Array {
  const lim = trustLimits(limits);
  const bad = (m: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `revocation list: ${m}`);
  if (!Number.isSafeInteger(list.sequence) || list.sequence < 1) throw bad(`sequence must be an integer 1..2^53-1, got ${String(list.sequence)}`);
  if (!Array.isArray(list.revoked) || list.revoked.length > lim.maxRevoked) throw bad(`at most ${lim.maxRevoked} keys`);
  const prints = list.revoked.map((k) => (k instanceof Uint8Array ? k : keyThumbprint(k)));
  if (prints.some((p) => p.length !== 32)) throw bad('a thumbprint must be 32 bytes (SHA-256, RFC 9679)');
  const sorted = [...prints].sort(compare);
  if (sorted.some((p, i) => i > 0 && bytesEqual(p, sorted[i - 1]!))) throw bad('a key is listed twice');
  const body = encodeCbor(new Map<number, unknown>([[1, list.sequence], [2, sorted.map((p) => bstr(p))]]));
  const doc = encodeTrustDocument(TRUST_KIND.revocationList, body);
  return signers.length === 0 ? doc : signTrustDocument(doc, signers, limits);
}

/** Decode a revocation list (structure only; nothing verified). */
export function decodeRevocationList(bytes: Uint8Array, limits?: Partial<TrustLimits>): { document: TrustDocument; list: RevocationList } {
  const lim = trustLimits(limits);
  const document = decodeTrustDocument(bytes, TRUST_KIND.revocationList, lim);
  const m = strictMembers(decodeCbor(document.body, suitLimits(), 'revocation list'), [1, 2], 'revocation list');
  if (!m.has(1) || !m.has(2)) throw malformed('revocation list: sequence (1) and revoked keys (2) are required');
  const sequence = asUint(m.get(1), 'revocation list sequence');
  if (sequence < 1) throw malformed('revocation list: sequence must be at least 1');
  const rv = asArray(m.get(2), 'revocation list keys');
  if (rv.length > lim.maxRevoked) throw new CoapfwError('SUIT_LIMIT', `revocation list: ${rv.length} keys exceeds ${lim.maxRevoked}`);
  const revoked = rv.map((k, i) => asBytes(k, `revocation list key ${i}`));
  revoked.forEach((k, i) => {
    if (k.length !== 32) throw malformed(`revocation list key ${i}: a thumbprint is 32 bytes`);
    // Strictly ascending: one encoding per list, so "the same list" is well defined.
    if (i > 0 && compare(revoked[i - 1]!, k) >= 0) throw malformed('revocation list: keys must be strictly ascending');
  });
  return { document, list: { sequence, revoked } };
}

/** Result of {@link applyRevocationList}. */
export interface RevocationResult {
  readonly state: TrustState;
  /** False when the device already held this very list (nothing to write). */
  readonly changed: boolean;
}

/**
 * Verify a revocation list against the current state and return the state
 * with it. Throws DOCUMENT_TYPE, SUIT_MALFORMED / SUIT_LIMIT,
 * REVOCATION_ROLLBACK (older than the list held), REVOCATION_CONFLICT
 * (same number, other content, validly signed), TRUST_NO_POLICY (the set has
 * no trust role), TRUST_THRESHOLD / KEY_NOT_AUTHORIZED / KEY_REVOKED.
 */
export function applyRevocationList(current: TrustState, bytes: Uint8Array, limits?: Partial<TrustLimits>): RevocationResult {
  checkTrustState(current, limits);
  const { document, list } = decodeRevocationList(bytes, limits);
  const held = current.revocation;
  const what = `revocation list ${list.sequence}`;
  // A lower number is refused before any signature is checked: nothing it says can matter.
  if (list.sequence < held.sequence) {
    throw new CoapfwError('REVOCATION_ROLLBACK', `${what}: the device already holds list ${held.sequence}`);
  }
  const digest = sha256(document.body);
  if (list.sequence === held.sequence && held.digest && bytesEqual(held.digest, digest)) return { state: current, changed: false };
  const role = trustRole(current);
  if (!role) throw new CoapfwError('TRUST_NO_POLICY', `${what}: trust version ${current.version} has no role for the trust pseudo-component, so nobody may sign revocation lists`);
  requireRole(tallyRole(role, current, matchTrustDocument(document, current.anchors), held), what);
  if (list.sequence === held.sequence) {
    throw new CoapfwError('REVOCATION_CONFLICT', `${what}: the device holds a different list under the same number; the issuer signed two lists with one sequence number`);
  }
  const state: TrustState = { ...current, revocation: { sequence: list.sequence, digest, revoked: list.revoked } };
  checkTrustState(state, limits);
  return { state, changed: true };
}
