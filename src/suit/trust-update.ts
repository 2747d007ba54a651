/**
 * Signed trust updates (rotation): a trust document of kind 1 whose body is
 * the complete new trust set (anchors, roles, source) under the next trust
 * version.
 *
 * ```cddl
 * trust-update-body = { trust-set-members }      ; trust-codec.ts; key 5 (owner) is refused
 * ```
 *
 * The TUF root rotation rule (TUF specification §5.3.4, "Update the root
 * role"), applied per role: every role the update changes must be satisfied
 * by the NEW role's threshold of the NEW keys, and by the CURRENT role's
 * threshold of the CURRENT keys, or by the current role of the trust
 * pseudo-component (the root of the set, as TUF's root role delegates the
 * others: it recovers a vendor whose keys were revoked or lost). Keys on
 * the device's revocation list count for nothing anywhere. A role changes
 * when its threshold or its signers' keys change. A structural change (a
 * role added, removed or given another scope, the source changed, or
 * nothing changed but the version) must satisfy the current and the new
 * trust role. So a vendor rotates its own key without the other vendors or
 * the integrator, but cannot touch another vendor's role, and a key stolen
 * from one role cannot widen itself. The authority is layered: the owner
 * (owner.ts) over the trust role over the component roles.
 *
 * The version must be exactly the current one plus one (TUF §5.3.5): a
 * device that missed updates walks the chain (trust-chain.ts), each version
 * has one meaning for every device, and a vendor cannot exhaust the version
 * space to lock out the owner's transfers (owner.ts), which must carry a
 * higher version. A trust update never carries or changes the owner key.
 */
import { CoapfwError } from '../errors.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import { TRUST_KIND } from './constants.js';
import type { SuitPrivateKey } from './keys.js';
import { suitLimits } from './limits.js';
import { SET_KEY, decodeTrustSetMembers, encodeTrustSetMembers, strictMembers } from './trust-codec.js';
import { decodeTrustDocument, encodeTrustDocument, matchTrustDocument, signTrustDocument, type TrustDocument } from './trust-document.js';
import { requireRole, tallyRole, type SignatureMatch } from './trust-match.js';
import {
  checkTrustSet,
  checkTrustState,
  keyThumbprint,
  sameScope,
  trustLimits,
  trustRole,
  type TrustLimits,
  type TrustRole,
  type TrustSet,
  type TrustState,
} from './trust-set.js';
import { toHex } from './values.js';

/** Key 5 of a trust set body is the owner key in an owner transfer; a vendor's update may not carry it. */
const OWNER_KEY = 5;

/**
 * Create a trust update carrying `set`, signed by each key (pass none to
 * get an unsigned document for `signTrustDocument`, one party at a time).
 */
export function createTrustUpdate(set: TrustSet, keys: readonly SuitPrivateKey[] = [], limits?: Partial<TrustLimits>): Uint8Array {
  checkTrustSet(set, limits, 'INVALID_ARGUMENT', 'trust update');
  const body = encodeCbor(new Map(encodeTrustSetMembers(set)));
  const doc = encodeTrustDocument(TRUST_KIND.trustUpdate, body);
  return keys.length === 0 ? doc : signTrustDocument(doc, keys, limits);
}

/** A decoded, not yet verified trust update. */
export interface DecodedTrustUpdate {
  readonly document: TrustDocument;
  readonly set: TrustSet;
}

/** Decode a trust update (structure and set validity; nothing verified). OWNER_REQUIRED if it carries an owner key. */
export function decodeTrustUpdate(bytes: Uint8Array, limits?: Partial<TrustLimits>): DecodedTrustUpdate {
  const lim = trustLimits(limits);
  const document = decodeTrustDocument(bytes, TRUST_KIND.trustUpdate, lim);
  const raw = decodeCbor(document.body, suitLimits(), 'trust update body');
  if (raw instanceof Map && [...raw.keys()].some((k) => Number(k) === OWNER_KEY)) {
    throw new CoapfwError('OWNER_REQUIRED', 'trust update: it tries to set the owner credential, which only an owner-signed transfer may change');
  }
  const m = strictMembers(raw, Object.values(SET_KEY), 'trust update body');
  const set = decodeTrustSetMembers(m, lim, 'trust update');
  checkTrustSet(set, lim, 'SUIT_MALFORMED', 'trust update');
  return { document, set };
}

/** Thumbprints of a role's signer keys, sorted: what "the same keys" means. */
function signerKeys(role: TrustRole, set: TrustSet): string {
  return role.signers
    .map((n) => toHex(keyThumbprint(set.anchors.find((a) => a.name === n)!.publicKey)))
    .sort()
    .join(',');
}

/** What a new set changes relative to the current one. */
export interface TrustChange {
  /** Roles added, removed or changed: each pair (current, new) must be satisfied where present. */
  readonly roles: readonly { readonly current?: TrustRole; readonly next?: TrustRole }[];
  /** Whether the trust pseudo-component's roles must also sign (see the file comment). */
  readonly structural: boolean;
}

/** Compare two trust sets role by role (by name). */
export function trustChange(current: TrustSet, next: TrustSet): TrustChange {
  const names = new Set([...current.roles, ...next.roles].map((r) => r.name));
  const roles: { current?: TrustRole; next?: TrustRole }[] = [];
  let structural = current.source !== next.source;
  for (const name of names) {
    const c = current.roles.find((r) => r.name === name);
    const n = next.roles.find((r) => r.name === name);
    if (!c || !n || !sameScope(c.scope, n.scope)) {
      structural = true;
      roles.push({ ...(c ? { current: c } : {}), ...(n ? { next: n } : {}) });
    } else if (c.threshold !== n.threshold || signerKeys(c, current) !== signerKeys(n, next)) {
      roles.push({ current: c, next: n });
    }
  }
  return { roles, structural: structural || roles.length === 0 };
}

function requireRoles(
  change: TrustChange,
  sets: { current: TrustState; next: TrustSet },
  matches: { current: SignatureMatch; next: SignatureMatch },
  what: string,
): void {
  const rev = sets.current.revocation;
  const currentTrust = trustRole(sets.current);
  const trustTally = currentTrust && tallyRole(currentTrust, sets.current, matches.current, rev);
  if (change.structural) {
    if (!trustTally) throw new CoapfwError('TRUST_NO_POLICY', `${what}: it changes the trust set's structure, and the current set has no role for the trust pseudo-component`);
    requireRole(trustTally, `${what} (current keys)`);
    const n = trustRole(sets.next);
    if (n) requireRole(tallyRole(n, sets.next, matches.next, rev), `${what} (new keys)`);
  }
  for (const p of change.roles) {
    if (p.current) {
      const own = tallyRole(p.current, sets.current, matches.current, rev);
      // The trust role may re-key any role: how a vendor whose keys were revoked or lost recovers.
      const byTrust = trustTally !== undefined && trustTally.counted.length >= trustTally.role.threshold;
      if (!byTrust) requireRole(own, `${what} (current keys)`);
    }
    if (p.next) requireRole(tallyRole(p.next, sets.next, matches.next, rev), `${what} (new keys)`);
  }
}

/**
 * Verify a trust update against the current state and return the new
 * state (owner and revocation state carried over). Throws DOCUMENT_TYPE,
 * SUIT_MALFORMED / SUIT_LIMIT / SUIT_UNSUPPORTED, OWNER_REQUIRED,
 * TRUST_ROLLBACK (version not above the current), TRUST_VERSION_GAP (more
 * than one above: walk the chain), TRUST_NO_POLICY, TRUST_THRESHOLD,
 * KEY_NOT_AUTHORIZED, KEY_REVOKED.
 */
export function applyTrustUpdate(current: TrustState, bytes: Uint8Array, limits?: Partial<TrustLimits>): TrustState {
  checkTrustState(current, limits);
  const { document, set } = decodeTrustUpdate(bytes, limits);
  const what = `trust update to version ${set.version}`;
  if (set.version <= current.version) {
    throw new CoapfwError('TRUST_ROLLBACK', `${what}: the device is at trust version ${current.version}; a trust update must be newer`);
  }
  if (set.version !== current.version + 1) {
    throw new CoapfwError('TRUST_VERSION_GAP', `${what}: the device is at trust version ${current.version}; apply version ${current.version + 1} first`);
  }
  const change = trustChange(current, set);
  const memo = new Map<string, boolean>();
  const matches = { current: matchTrustDocument(document, current.anchors, memo), next: matchTrustDocument(document, set.anchors, memo) };
  requireRoles(change, { current, next: set }, matches, what);
  const next: TrustState = { ...set, ...(current.owner ? { owner: current.owner } : {}), revocation: current.revocation };
  checkTrustState(next, limits);
  return next;
}
