/**
 * The trust set: which keys may sign for which components, how many of them
 * must, and the trust version that orders every change to it. Pure data and
 * its validation; verification is in trust-verify.ts, the signed changes in
 * trust-update.ts, revocation.ts and owner.ts.
 *
 * The model follows TUF's roles (TUF specification §2.1.1, §4.3): a role
 * names the anchors that may sign for it and a threshold k of those n
 * signers. Here a role is bound to a scope instead of a metadata file: a set
 * of SUIT components, or the pseudo-component "trust" that governs the trust
 * set itself and the revocation list. An anchor may sign only for the roles
 * that list it, so vendor A's key binds to the radio by being a signer of the
 * radio's role and of no other (RFC 9019 §6.1: several authorities, each for
 * its own components; RFC 9124 §4.3.4).
 *
 * Every role whose scope matches a component the manifest touches must be
 * satisfied (a conjunction): adding a role can only make acceptance
 * stricter, never open a component to another signer.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { parseCoapUri } from '../codec/uri.js';
import { CoapfwError, type CoapfwErrorCode } from '../errors.js';
import { encodeCoseKey, publicKeyFromBytes, type SuitPublicKey } from './keys.js';
import type { ComponentId } from './types.js';
import { bytesEqual, toHex } from './values.js';

/** Which components a role governs. */
export type TrustScope =
  /** Every component of every manifest (one vendor signs everything; what a plain `TrustPolicy` means). */
  | { readonly kind: 'any-component' }
  /**
   * Components matching every field given (at least one): the SUIT component
   * id, and the vendor-id / class-id (16-byte UUIDs) that component has: the
   * manifest's parameters for it, plus the device's own table when the
   * verifier gets one (see `FirmwareVerifyOptions.components`).
   */
  | {
      readonly kind: 'component';
      readonly componentId?: ComponentId;
      readonly vendorId?: Uint8Array;
      readonly classId?: Uint8Array;
    }
  /** The pseudo-component "trust": structural trust updates and revocation lists. */
  | { readonly kind: 'trust' };

/** A trusted public key with the name roles refer to it by. */
export interface TrustAnchorEntry {
  readonly name: string;
  readonly publicKey: SuitPublicKey;
}

/** A policy for one scope: `threshold` (k) valid signatures by distinct `signers` (n) are required. */
export interface TrustRole {
  readonly name: string;
  readonly scope: TrustScope;
  /** Names of the anchors that may sign for this role. */
  readonly signers: readonly string[];
  /** k, 1..n: 1 is any-of, `signers.length` is all-of. */
  readonly threshold: number;
}

/** What a trust update replaces: anchors, roles, source, under a new version. */
export interface TrustSet {
  /** Trust version: monotonic, anti-rollback for trust itself. */
  readonly version: number;
  readonly anchors: readonly TrustAnchorEntry[];
  readonly roles: readonly TrustRole[];
  /** The update server the device polls (coap:// or coaps://). */
  readonly source?: string;
}

/** The newest revocation list the device has accepted. */
export interface RevocationState {
  /** Sequence number of that list; 0 when none was ever accepted. */
  readonly sequence: number;
  /** SHA-256 of that list's signed body (absent with sequence 0): same number, other content is a conflict. */
  readonly digest?: Uint8Array;
  /** RFC 9679 COSE Key Thumbprints (SHA-256) of the revoked keys, ascending. */
  readonly revoked: readonly Uint8Array[];
}

/** Everything the device keeps about trust (what the trust store persists). */
export interface TrustState extends TrustSet {
  /** The owner's key, set at provisioning; only an owner-signed transfer changes it. */
  readonly owner?: SuitPublicKey;
  readonly revocation: RevocationState;
}

/** Bounds on a trust set and the documents that carry it; every one an option. */
export interface TrustLimits {
  readonly maxAnchors: number;
  readonly maxRoles: number;
  /** UTF-8 bytes of an anchor or role name. */
  readonly maxNameBytes: number;
  /** UTF-8 bytes of the source URI. */
  readonly maxSourceBytes: number;
  /** Keys in a revocation list. */
  readonly maxRevoked: number;
  /** Parts of a component id in a scope, and bytes of each part. */
  readonly maxComponentIdParts: number;
  readonly maxIdBytes: number;
  /** Bytes of one trust document. */
  readonly maxDocumentBytes: number;
  /** Signatures looked at on one trust document. */
  readonly maxSignatures: number;
  /** Documents in one chain walk. */
  readonly maxChainLength: number;
}

/**
 * Defaults: room for a board with several vendors (12 keys, 8 roles), and
 * small enough that the largest state they allow encodes in 4,039 bytes, so
 * one copy fits a 4 KiB erase block in the trust store (flash/trust-store.ts).
 */
export const DEFAULT_TRUST_LIMITS: TrustLimits = Object.freeze({
  maxAnchors: 12,
  maxRoles: 8,
  maxNameBytes: 24,
  maxSourceBytes: 255,
  maxRevoked: 32,
  maxComponentIdParts: 2,
  maxIdBytes: 32,
  maxDocumentBytes: 16 * 1024,
  maxSignatures: 8,
  maxChainLength: 32,
});

/** Merge caller overrides over the defaults. */
export function trustLimits(over?: Partial<TrustLimits>): TrustLimits {
  return over ? { ...DEFAULT_TRUST_LIMITS, ...over } : DEFAULT_TRUST_LIMITS;
}

/**
 * The RFC 9679 COSE Key Thumbprint of a key: SHA-256 over the deterministic
 * encoding of its required COSE_Key parameters (kty, crv, x[, y]; no kid).
 * What revocation lists name keys by; the same for a P-256 key in compressed
 * and uncompressed form.
 */
export function keyThumbprint(key: SuitPublicKey): Uint8Array {
  let tp = thumbprints.get(key);
  if (tp === undefined) {
    // encodeCoseKey writes labels 1, -1, -2, -3 in that order: RFC 8949 §4.2.1 order.
    tp = sha256(encodeCoseKey({ type: key.type, bytes: key.bytes }));
    thumbprints.set(key, tp);
  }
  return tp.slice();
}

// Per key object: a P-256 thumbprint costs a point decompression, and every
// signature match computes the thumbprints of all anchors (keys are treated as immutable).
const thumbprints = new WeakMap<SuitPublicKey, Uint8Array>();

const utf8 = new TextEncoder();

/** Validation failures: INVALID_ARGUMENT for a caller's input, SUIT_MALFORMED for a received document. */
export type TrustCheckCode = Extract<CoapfwErrorCode, 'INVALID_ARGUMENT' | 'SUIT_MALFORMED'>;

function checker(code: TrustCheckCode, label: string): (ok: boolean, msg: string) => void {
  return (ok, msg) => {
    if (!ok) throw new CoapfwError(code, `${label}: ${msg}`);
  };
}

function checkName(ensure: (ok: boolean, m: string) => void, name: unknown, lim: TrustLimits, what: string): void {
  ensure(typeof name === 'string' && name.length > 0, `${what} name must be a non-empty string`);
  ensure(utf8.encode(name as string).length <= lim.maxNameBytes, `${what} name '${String(name)}' exceeds ${lim.maxNameBytes} bytes`);
}

function checkScope(ensure: (ok: boolean, m: string) => void, s: TrustScope, lim: TrustLimits, what: string): void {
  if (s?.kind === 'any-component' || s?.kind === 'trust') return;
  ensure(s?.kind === 'component', `${what}: scope kind must be 'any-component', 'component' or 'trust'`);
  const { componentId, vendorId, classId } = s as Extract<TrustScope, { kind: 'component' }>;
  ensure(componentId !== undefined || vendorId !== undefined || classId !== undefined, `${what}: a component scope needs a component id, vendor id or class id`);
  const idOk = (b: unknown): boolean => b instanceof Uint8Array && b.length > 0 && b.length <= lim.maxIdBytes;
  if (componentId !== undefined) {
    ensure(Array.isArray(componentId) && componentId.length > 0 && componentId.length <= lim.maxComponentIdParts, `${what}: component id must have 1..${lim.maxComponentIdParts} parts`);
    // A component id part may be empty in SUIT, but never longer than the limit.
    ensure(componentId.every((p) => p instanceof Uint8Array && p.length <= lim.maxIdBytes), `${what}: component id parts must be byte strings of at most ${lim.maxIdBytes} bytes`);
  }
  if (vendorId !== undefined) ensure(idOk(vendorId), `${what}: vendor id must be 1..${lim.maxIdBytes} bytes`);
  if (classId !== undefined) ensure(idOk(classId), `${what}: class id must be 1..${lim.maxIdBytes} bytes`);
}

/**
 * Check a trust set once at the boundary: names unique and bounded, keys
 * valid and distinct (one key under two names would count twice towards a
 * threshold), every role's signers existing and distinct, 1 <= k <= n, at
 * most one role for the trust pseudo-component, the source a coap(s) URI.
 */
export function checkTrustSet(set: TrustSet, limits?: Partial<TrustLimits>, code: TrustCheckCode = 'INVALID_ARGUMENT', label = 'trust set'): void {
  const lim = trustLimits(limits);
  const ensure = checker(code, label);
  ensure(typeof set === 'object' && set !== null, 'expected an object');
  ensure(Number.isSafeInteger(set.version) && set.version >= 0, `version must be an integer 0..2^53-1, got ${String(set.version)}`);
  ensure(Array.isArray(set.anchors) && set.anchors.length <= lim.maxAnchors, `at most ${lim.maxAnchors} anchors`);
  ensure(Array.isArray(set.roles) && set.roles.length <= lim.maxRoles, `at most ${lim.maxRoles} roles`);
  const names = new Set<string>();
  const prints = new Set<string>();
  for (const a of set.anchors) {
    checkName(ensure, a?.name, lim, 'anchor');
    ensure(!names.has(a.name), `two anchors are named '${a.name}'`);
    names.add(a.name);
    try {
      publicKeyFromBytes(a.publicKey?.type, a.publicKey?.bytes);
    } catch (e) {
      throw new CoapfwError(code, `${label}: anchor '${a.name}': ${(e as Error).message}`, { cause: e });
    }
    const tp = toHex(keyThumbprint(a.publicKey));
    ensure(!prints.has(tp), `anchor '${a.name}' holds the same key as another anchor`);
    prints.add(tp);
  }
  const roleNames = new Set<string>();
  let trustRoles = 0;
  for (const r of set.roles) {
    checkName(ensure, r?.name, lim, 'role');
    ensure(!roleNames.has(r.name), `two roles are named '${r.name}'`);
    roleNames.add(r.name);
    checkScope(ensure, r.scope, lim, `role '${r.name}'`);
    if (r.scope.kind === 'trust') trustRoles++;
    ensure(Array.isArray(r.signers) && r.signers.length > 0, `role '${r.name}' needs at least one signer`);
    ensure(new Set(r.signers).size === r.signers.length, `role '${r.name}' lists a signer twice`);
    for (const s of r.signers) ensure(names.has(s), `role '${r.name}': no anchor named '${String(s)}'`);
    ensure(Number.isSafeInteger(r.threshold) && r.threshold >= 1 && r.threshold <= r.signers.length, `role '${r.name}': threshold must be 1..${r.signers.length}, got ${String(r.threshold)}`);
  }
  ensure(trustRoles <= 1, 'at most one role may govern the trust pseudo-component');
  if (set.source !== undefined) {
    ensure(typeof set.source === 'string' && utf8.encode(set.source).length <= lim.maxSourceBytes, `source must be a URI of at most ${lim.maxSourceBytes} bytes`);
    try {
      parseCoapUri(set.source);
    } catch (e) {
      throw new CoapfwError(code, `${label}: source: ${(e as Error).message}`, { cause: e });
    }
  }
}

// States that passed `checkTrustState` under the default limits: every verification starts
// with that check, and it costs a point decompression per P-256 key (about 2 ms for a
// five-anchor set here), so a state object is checked once. States are treated as
// immutable (every function here returns a new one).
const checkedStates = new WeakSet<TrustState>();

/**
 * Check a whole trust state: the set, the owner key, the revocation state.
 * A state object that already passed (with default limits) is not checked again.
 */
export function checkTrustState(state: TrustState, limits?: Partial<TrustLimits>, code: TrustCheckCode = 'INVALID_ARGUMENT', label = 'trust state'): void {
  if (limits === undefined && typeof state === 'object' && state !== null && checkedStates.has(state)) return;
  checkTrustSet(state, limits, code, label);
  const lim = trustLimits(limits);
  const ensure = checker(code, label);
  if (state.owner !== undefined) {
    try {
      publicKeyFromBytes(state.owner.type, state.owner.bytes);
    } catch (e) {
      throw new CoapfwError(code, `${label}: owner key: ${(e as Error).message}`, { cause: e });
    }
  }
  const r = state.revocation;
  ensure(typeof r === 'object' && r !== null, 'revocation state missing');
  ensure(Number.isSafeInteger(r.sequence) && r.sequence >= 0, 'revocation sequence must be an integer >= 0');
  ensure(r.sequence === 0 ? r.digest === undefined : r.digest instanceof Uint8Array && r.digest.length === 32, 'revocation digest must be 32 bytes, and only with a sequence number');
  ensure(Array.isArray(r.revoked) && r.revoked.length <= lim.maxRevoked, `at most ${lim.maxRevoked} revoked keys`);
  ensure(r.sequence > 0 || r.revoked.length === 0, 'revoked keys without a revocation list');
  ensure(r.revoked.every((k) => k instanceof Uint8Array && k.length === 32), 'revoked key thumbprints must be 32 bytes');
  if (limits === undefined) checkedStates.add(state);
}

/** A trust state with no revocation list seen yet: what provisioning writes. */
export function initialTrustState(set: TrustSet, owner?: SuitPublicKey): TrustState {
  const state: TrustState = { ...set, ...(owner ? { owner } : {}), revocation: { sequence: 0, revoked: [] } };
  checkTrustState(state);
  return state;
}

/** The role governing the trust pseudo-component, if the set has one. */
export function trustRole(set: TrustSet): TrustRole | undefined {
  return set.roles.find((r) => r.scope.kind === 'trust');
}

/** True when two scopes are the same. */
export function sameScope(a: TrustScope, b: TrustScope): boolean {
  if (a.kind !== 'component' || b.kind !== 'component') return a.kind === b.kind;
  const eq = (x: Uint8Array | undefined, y: Uint8Array | undefined): boolean => (x === undefined ? y === undefined : y !== undefined && bytesEqual(x, y));
  const ids = (x: ComponentId | undefined, y: ComponentId | undefined): boolean =>
    x === undefined ? y === undefined : y !== undefined && x.length === y.length && x.every((p, i) => eq(p, y[i]));
  return ids(a.componentId, b.componentId) && eq(a.vendorId, b.vendorId) && eq(a.classId, b.classId);
}

/** Whether a key is in a revocation state's list. */
export function isRevoked(revocation: RevocationState, key: SuitPublicKey): boolean {
  if (revocation.revoked.length === 0) return false;
  const tp = keyThumbprint(key);
  return revocation.revoked.some((r) => bytesEqual(r, tp));
}
