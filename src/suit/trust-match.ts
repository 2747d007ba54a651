/**
 * Which trusted keys made which COSE_Sign1 signatures (RFC 9052 §4.4), and
 * whether they satisfy a role's threshold. Shared by the simple
 * `TrustPolicy` (trust.ts), the firmware verifier and the trust documents.
 */
import { CoapfwError } from '../errors.js';
import { keyTypeOfAlg, verifySign1 } from './cose.js';
import type { SuitPublicKey } from './keys.js';
import { isRevoked, keyThumbprint, type RevocationState, type TrustRole, type TrustSet } from './trust-set.js';
import type { CoseSign1 } from './types.js';
import { bytesEqual, toHex } from './values.js';

/** A key a signature may have been made with. */
export interface SignatureCandidate {
  readonly publicKey: SuitPublicKey;
  /** When both this and a signature carry a key id, they must be equal for the key to be tried. */
  readonly keyId?: Uint8Array;
}

/** The outcome of matching signatures against candidate keys. */
export interface SignatureMatch {
  /** Indices of the candidates that made at least one valid signature. */
  readonly signedBy: ReadonlySet<number>;
  /** Signatures no candidate of their algorithm verifies (wrong key or tampered). */
  readonly invalid: number;
  /** Signatures no candidate could have made (unknown algorithm, no key of that type or key id). */
  readonly untrusted: number;
}

/**
 * Match every signature over the detached `payload` (with `externalAad`)
 * against the candidates. A signature stops at the first key that verifies
 * it (two candidates never hold one key: the policy checks forbid it). When
 * a signature's kid is the RFC 9679 thumbprint of a candidate (trust
 * documents are signed so), only that candidate is tried: one verification
 * per signature instead of one per anchor. The kid is unprotected, so a
 * wrong one only makes its own signature fail. `memo` carries verification
 * results between calls over the same signatures (a trust update is checked
 * against the current and the new set, which share keys).
 */
export function matchSignatures(
  sigs: readonly CoseSign1[],
  payload: Uint8Array,
  candidates: readonly SignatureCandidate[],
  externalAad?: Uint8Array,
  memo?: Map<string, boolean>,
): SignatureMatch {
  const signedBy = new Set<number>();
  let invalid = 0;
  let untrusted = 0;
  const prints = candidates.map((c) => toHex(keyThumbprint(c.publicKey)));
  sigs.forEach((sig, s) => {
    if (sig.payload !== null && !bytesEqual(sig.payload, payload)) {
      invalid++;
      return;
    }
    const type = keyTypeOfAlg(sig.alg);
    let tried = type === undefined ? [] : candidates.map((_, i) => i).filter((i) => candidates[i]!.publicKey.type === type && !(candidates[i]!.keyId && sig.kid && !bytesEqual(candidates[i]!.keyId!, sig.kid)));
    const hinted = sig.kid && tried.filter((i) => prints[i] === toHex(sig.kid!));
    if (hinted && hinted.length > 0) tried = hinted;
    if (tried.length === 0) {
      untrusted++;
      return;
    }
    const verify = (i: number): boolean => {
      const k = `${s}:${prints[i]}`;
      let ok = memo?.get(k);
      if (ok === undefined) {
        ok = verifySign1(sig, payload, candidates[i]!.publicKey, externalAad);
        memo?.set(k, ok);
      }
      return ok;
    };
    const ok = tried.find(verify);
    if (ok === undefined) invalid++;
    else signedBy.add(ok);
  });
  return { signedBy, invalid, untrusted };
}

/** How one role fared: signer names in each group. */
export interface RoleTally {
  readonly role: TrustRole;
  /** Signers of the role with a valid signature by a key that is not revoked: these count. */
  readonly counted: readonly string[];
  /** Signers of the role whose valid signature does not count: their key is revoked. */
  readonly revoked: readonly string[];
  /** Anchors of the set with a valid signature that are not signers of this role. */
  readonly foreign: readonly string[];
}

/** Tally a role from a match against `set.anchors` (candidate i is anchor i). */
export function tallyRole(role: TrustRole, set: TrustSet, match: SignatureMatch, revocation: RevocationState): RoleTally {
  const counted: string[] = [];
  const revoked: string[] = [];
  const foreign: string[] = [];
  for (const i of match.signedBy) {
    const a = set.anchors[i]!;
    if (!role.signers.includes(a.name)) foreign.push(a.name);
    else if (isRevoked(revocation, a.publicKey)) revoked.push(a.name);
    else counted.push(a.name);
  }
  return { role, counted, revoked, foreign };
}

const list = (names: readonly string[]): string => (names.length === 0 ? 'none' : names.map((n) => `'${n}'`).join(', '));

/**
 * Throw unless the tally meets the role's threshold. KEY_REVOKED when it
 * would be met counting revoked keys; KEY_NOT_AUTHORIZED when the only valid
 * signatures come from anchors that are not signers of the role (another
 * vendor's key); TRUST_THRESHOLD otherwise. `what` names the document.
 */
export function requireRole(t: RoleTally, what: string): void {
  const { role } = t;
  if (t.counted.length >= role.threshold) return;
  const need = `role '${role.name}' needs ${role.threshold} of ${list(role.signers)}`;
  if (t.counted.length + t.revoked.length >= role.threshold) {
    throw new CoapfwError('KEY_REVOKED', `${what}: ${need}; ${list(t.revoked)} signed with a revoked key, which counts for nothing`);
  }
  if (t.counted.length === 0 && t.revoked.length === 0 && t.foreign.length > 0) {
    throw new CoapfwError('KEY_NOT_AUTHORIZED', `${what}: ${need}; only ${list(t.foreign)} signed, and may not sign for it`);
  }
  throw new CoapfwError('TRUST_THRESHOLD', `${what}: ${need}, has ${t.counted.length} (${list(t.counted)})`);
}
