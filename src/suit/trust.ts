/**
 * Trust policy: which keys may sign manifests, and how many of them must.
 * RFC 9019 §6 and RFC 9124 §4.3.4: a device installs only what an
 * authorised party signed; with a multi-party policy, every named party.
 */
import { CoapfwError } from '../errors.js';
import type { SuitPublicKey } from './keys.js';
import { matchSignatures } from './trust-match.js';
import type { CoseSign1 } from './types.js';
import { toHex } from './values.js';

/** A key the device trusts. */
export interface TrustAnchor {
  /** Name used by an `allOf` rule and in messages (for example 'oem', 'operator'). */
  readonly name?: string;
  readonly publicKey: SuitPublicKey;
  /**
   * Optional key id. When both the anchor and a signature carry one, they must
   * be equal for the anchor to be tried; an anchor without one is tried on every signature.
   */
  readonly keyId?: Uint8Array;
}

/** Which valid signatures an envelope needs. */
export type TrustRule =
  /** At least one valid signature by any anchor. */
  | { readonly kind: 'any' }
  /** A valid signature by every anchor named here (for example OEM and operator). */
  | { readonly kind: 'allOf'; readonly names: readonly string[] };

/** Trust anchors and the rule; `rule` defaults to `{ kind: 'any' }`. */
export interface TrustPolicy {
  readonly anchors: readonly TrustAnchor[];
  readonly rule?: TrustRule;
}

function anchorLabel(a: TrustAnchor, i: number): string {
  return a.name ?? (a.keyId ? `kid ${toHex(a.keyId)}` : `anchor ${i}`);
}

/** Check a policy once at the boundary: non-empty, anchor names unique, `allOf` names distinct and existing. */
export function checkTrustPolicy(policy: TrustPolicy): void {
  if (!policy || !Array.isArray(policy.anchors) || policy.anchors.length === 0) {
    throw new CoapfwError('INVALID_ARGUMENT', 'trust policy: at least one trust anchor is required');
  }
  // Names identify parties: two anchors with one name would let either key
  // stand for both, silently turning allOf into any-one.
  const names = new Set<string>();
  for (const a of policy.anchors) {
    if (a.name === undefined) continue;
    if (names.has(a.name)) throw new CoapfwError('INVALID_ARGUMENT', `trust policy: two anchors are named '${a.name}'`);
    names.add(a.name);
  }
  // The same key under two names would let one signature count for two parties.
  const keys = new Set<string>();
  for (const a of policy.anchors) {
    const k = `${a.publicKey.type}:${toHex(a.publicKey.bytes)}`;
    if (keys.has(k)) throw new CoapfwError('INVALID_ARGUMENT', 'trust policy: two anchors hold the same public key');
    keys.add(k);
  }
  const rule = policy.rule ?? { kind: 'any' };
  if (rule.kind === 'allOf') {
    if (rule.names.length === 0) throw new CoapfwError('INVALID_ARGUMENT', 'trust policy: allOf needs at least one name');
    if (new Set(rule.names).size !== rule.names.length) throw new CoapfwError('INVALID_ARGUMENT', 'trust policy: allOf names a party twice');
    for (const n of rule.names) {
      if (!policy.anchors.some((a) => a.name === n)) throw new CoapfwError('INVALID_ARGUMENT', `trust policy: no anchor named '${n}'`);
    }
  }
}

/**
 * Apply the policy to the envelope's signatures over `payload` (the encoded
 * SUIT_Digest). Returns the indices of the anchors that signed. Throws
 * NO_SIGNATURE (none at all, or a required party missing), UNTRUSTED_KEY (no
 * anchor can have made a signature) or SIGNATURE_INVALID (a candidate anchor's
 * key does not verify it: wrong key or tampered).
 */
export function applyTrustPolicy(sigs: readonly CoseSign1[], payload: Uint8Array, policy: TrustPolicy): number[] {
  checkTrustPolicy(policy);
  if (sigs.length === 0) throw new CoapfwError('NO_SIGNATURE', 'authentication: the envelope carries no signature');
  const { signedBy, invalid, untrusted } = matchSignatures(sigs, payload, policy.anchors);
  const rule = policy.rule ?? { kind: 'any' };
  if (rule.kind === 'any') {
    if (signedBy.size > 0) return [...signedBy];
    if (invalid > 0) throw new CoapfwError('SIGNATURE_INVALID', `signature: ${invalid} signature(s) do not verify with any trusted key of their algorithm`);
    throw new CoapfwError('UNTRUSTED_KEY', `signature: ${untrusted} signature(s), none by a trusted key or algorithm`);
  }
  const missing = rule.names.filter((n) => !policy.anchors.some((a, i) => a.name === n && signedBy.has(i)));
  if (missing.length > 0) {
    const code = signedBy.size === 0 && invalid > 0 ? 'SIGNATURE_INVALID' : 'NO_SIGNATURE';
    throw new CoapfwError(code, `signature: no valid signature by required ${missing.map((n) => `'${n}'`).join(', ')} (have ${[...signedBy].map((i) => anchorLabel(policy.anchors[i]!, i)).join(', ') || 'none'})`);
  }
  return [...signedBy];
}
