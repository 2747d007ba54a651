/**
 * CBOR encoding of trust sets and trust states, shared by the signed trust
 * documents (trust-document.ts) and the on-flash trust record
 * (flash/trust-store.ts). Deterministic: map keys ascending, shortest heads
 * (RFC 8949 §4.2.1), so one set has one encoding.
 *
 * ```cddl
 * anchor = [name: tstr, key: bstr .cbor COSE_Key]          ; public key only, RFC 9052 §7
 * role   = [name: tstr, scope, threshold: uint, signers: [+ uint]]   ; signers: anchor indices
 * scope  = [0]                                             ; any component
 *        / [1]                                             ; the trust pseudo-component
 *        / [2, component-id: [+ bstr] / null, vendor-id: bstr / null, class-id: bstr / null]
 * trust-set-members = (1: version, 2: [* anchor], 3: [* role], ? 4: source: tstr)
 * trust-state = {
 *   0: 1,                                                  ; format version
 *   trust-set-members,
 *   ? 5: owner: bstr .cbor COSE_Key,
 *   6: [sequence: uint, digest: bstr / null, revoked: [* bstr]],
 * }
 * ```
 * Unknown members are an error, not skipped: a signer's restriction this
 * code did not understand must never be ignored.
 */
import { CoapfwError } from '../errors.js';
import { bstr, decodeCbor, encodeCbor } from './cbor.js';
import { encodeCoseKey, parsePublicKey, type SuitPublicKey } from './keys.js';
import { DEFAULT_SUIT_LIMITS } from './limits.js';
import { checkTrustState, trustLimits, type TrustLimits, type TrustRole, type TrustScope, type TrustSet, type TrustState } from './trust-set.js';
import { asArray, asBytes, asText, asUint, intKey, malformed } from './values.js';

/** Member keys of a trust set (in a trust update body and the stored state). */
export const SET_KEY = { version: 1, anchors: 2, roles: 3, source: 4 } as const;
const STATE_KEY = { format: 0, owner: 5, revocation: 6 } as const;
/** Format version of the stored trust state. */
export const TRUST_STATE_FORMAT = 1;

/**
 * A CBOR map whose keys must all be integers from `allowed`: anything else
 * is SUIT_UNSUPPORTED (a member this code does not know) or SUIT_MALFORMED.
 */
export function strictMembers(v: unknown, allowed: readonly number[], what: string): Map<number, unknown> {
  if (!(v instanceof Map)) throw malformed(`${what}: expected a map`);
  const out = new Map<number, unknown>();
  for (const [k, val] of v) {
    const n = intKey(k);
    if (n === undefined) throw malformed(`${what}: map key ${String(k)} is not an integer`);
    if (!allowed.includes(n)) throw new CoapfwError('SUIT_UNSUPPORTED', `${what}: unknown member ${n}`);
    out.set(n, val);
  }
  return out;
}

function required(m: Map<number, unknown>, key: number, what: string): unknown {
  if (!m.has(key)) throw malformed(`${what}: member ${key} is missing`);
  return m.get(key);
}

/** COSE_Key bytes of a public key. */
export function encodePublicKey(key: SuitPublicKey): Buffer {
  return bstr(encodeCoseKey(key));
}

/** A public COSE_Key; a key with a private part (label -4) is refused, never read. */
export function decodePublicKey(v: unknown, what: string): SuitPublicKey {
  const bytes = asBytes(v, what);
  const m = decodeCbor(bytes, DEFAULT_SUIT_LIMITS, what);
  if (!(m instanceof Map)) throw malformed(`${what}: expected a COSE_Key map`);
  if (m.has(-4)) throw malformed(`${what}: carries a private key (COSE_Key label -4)`);
  try {
    return parsePublicKey(bytes);
  } catch (e) {
    throw new CoapfwError('SUIT_MALFORMED', `${what}: ${(e as Error).message}`, { cause: e });
  }
}

function encodeScope(s: TrustScope): unknown[] {
  if (s.kind === 'any-component') return [0];
  if (s.kind === 'trust') return [1];
  const opt = (b: Uint8Array | undefined): Buffer | null => (b === undefined ? null : bstr(b));
  return [2, s.componentId ? s.componentId.map((p) => bstr(p)) : null, opt(s.vendorId), opt(s.classId)];
}

function decodeScope(v: unknown, what: string): TrustScope {
  const a = asArray(v, what);
  const kind = asUint(a[0], `${what} kind`);
  if (kind === 0 && a.length === 1) return { kind: 'any-component' };
  if (kind === 1 && a.length === 1) return { kind: 'trust' };
  if (kind !== 2 || a.length !== 4) throw malformed(`${what}: expected [0], [1] or [2, component-id, vendor-id, class-id]`);
  const opt = (x: unknown, w: string): Uint8Array | undefined => (x === null ? undefined : asBytes(x, w));
  const cid = a[1] === null ? undefined : asArray(a[1], `${what} component id`).map((p, i) => asBytes(p, `${what} component id part ${i}`));
  const vendorId = opt(a[2], `${what} vendor id`);
  const classId = opt(a[3], `${what} class id`);
  return { kind: 'component', ...(cid ? { componentId: cid } : {}), ...(vendorId ? { vendorId } : {}), ...(classId ? { classId } : {}) };
}

/** The members of a trust set, as map entries (keys 1..4, ascending). */
export function encodeTrustSetMembers(set: TrustSet): [number, unknown][] {
  const index = new Map(set.anchors.map((a, i) => [a.name, i]));
  const out: [number, unknown][] = [
    [SET_KEY.version, set.version],
    [SET_KEY.anchors, set.anchors.map((a) => [a.name, encodePublicKey(a.publicKey)])],
    [SET_KEY.roles, set.roles.map((r) => [r.name, encodeScope(r.scope), r.threshold, r.signers.map((s) => index.get(s)!)])],
  ];
  if (set.source !== undefined) out.push([SET_KEY.source, set.source]);
  return out;
}

/** Read the trust set members of a decoded map (validated later by `checkTrustSet`). */
export function decodeTrustSetMembers(m: Map<number, unknown>, lim: TrustLimits, what: string): TrustSet {
  const version = asUint(required(m, SET_KEY.version, what), `${what} version`);
  const anchorsV = asArray(required(m, SET_KEY.anchors, what), `${what} anchors`);
  const rolesV = asArray(required(m, SET_KEY.roles, what), `${what} roles`);
  if (anchorsV.length > lim.maxAnchors) throw new CoapfwError('SUIT_LIMIT', `${what}: ${anchorsV.length} anchors exceeds ${lim.maxAnchors}`);
  if (rolesV.length > lim.maxRoles) throw new CoapfwError('SUIT_LIMIT', `${what}: ${rolesV.length} roles exceeds ${lim.maxRoles}`);
  const anchors = anchorsV.map((x, i) => {
    const a = asArray(x, `${what} anchor ${i}`);
    if (a.length !== 2) throw malformed(`${what} anchor ${i}: expected [name, COSE_Key]`);
    return { name: asText(a[0], `${what} anchor ${i} name`), publicKey: decodePublicKey(a[1], `${what} anchor ${i} key`) };
  });
  const roles = rolesV.map((x, i): TrustRole => {
    const r = asArray(x, `${what} role ${i}`);
    if (r.length !== 4) throw malformed(`${what} role ${i}: expected [name, scope, threshold, signers]`);
    const signers = asArray(r[3], `${what} role ${i} signers`).map((s, j) => {
      const a = anchors[asUint(s, `${what} role ${i} signer ${j}`)];
      if (a === undefined) throw malformed(`${what} role ${i}: signer ${j} is not an anchor index`);
      return a.name;
    });
    return { name: asText(r[0], `${what} role ${i} name`), scope: decodeScope(r[1], `${what} role ${i} scope`), threshold: asUint(r[2], `${what} role ${i} threshold`), signers };
  });
  const source = m.has(SET_KEY.source) ? asText(m.get(SET_KEY.source), `${what} source`) : undefined;
  return { version, anchors, roles, ...(source === undefined ? {} : { source }) };
}

/** Encode a whole trust state (the trust store's record). */
export function encodeTrustState(state: TrustState): Uint8Array {
  checkTrustState(state);
  const r = state.revocation;
  const m = new Map<number, unknown>([[STATE_KEY.format, TRUST_STATE_FORMAT], ...encodeTrustSetMembers(state)]);
  if (state.owner) m.set(STATE_KEY.owner, encodePublicKey(state.owner));
  m.set(STATE_KEY.revocation, [r.sequence, r.digest ? bstr(r.digest) : null, r.revoked.map((k) => bstr(k))]);
  return encodeCbor(m);
}

/** Decode and check a stored trust state. Throws SUIT_MALFORMED, SUIT_UNSUPPORTED or SUIT_LIMIT. */
export function decodeTrustState(bytes: Uint8Array, limits?: Partial<TrustLimits>): TrustState {
  const lim = trustLimits(limits);
  const what = 'trust state';
  const m = strictMembers(decodeCbor(bytes, DEFAULT_SUIT_LIMITS, what), [0, 1, 2, 3, 4, 5, 6], what);
  const format = asUint(required(m, STATE_KEY.format, what), `${what} format`);
  if (format !== TRUST_STATE_FORMAT) throw new CoapfwError('SUIT_UNSUPPORTED', `${what}: format ${format}, expected ${TRUST_STATE_FORMAT}`);
  const set = decodeTrustSetMembers(m, lim, what);
  const rv = asArray(required(m, STATE_KEY.revocation, what), `${what} revocation`);
  if (rv.length !== 3) throw malformed(`${what} revocation: expected [sequence, digest, revoked]`);
  const revokedV = asArray(rv[2], `${what} revoked`);
  if (revokedV.length > lim.maxRevoked) throw new CoapfwError('SUIT_LIMIT', `${what}: ${revokedV.length} revoked keys exceeds ${lim.maxRevoked}`);
  const state: TrustState = {
    ...set,
    ...(m.has(STATE_KEY.owner) ? { owner: decodePublicKey(m.get(STATE_KEY.owner), `${what} owner`) } : {}),
    revocation: {
      sequence: asUint(rv[0], `${what} revocation sequence`),
      ...(rv[1] === null ? {} : { digest: asBytes(rv[1], `${what} revocation digest`) }),
      revoked: revokedV.map((k, i) => asBytes(k, `${what} revoked ${i}`)),
    },
  };
  checkTrustState(state, lim, 'SUIT_MALFORMED', what);
  return state;
}
