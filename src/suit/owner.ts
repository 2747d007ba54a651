/**
 * Owner-controlled change of source: a transfer of authority, a trust
 * document of kind 3 signed by the device's owner key (set at provisioning)
 * and by nobody else's authority.
 *
 * ```cddl
 * owner-transfer-body = {
 *   1: version: uint,                      ; > the device's trust version (any gap)
 *   ? 2: anchors: [* anchor],              ; with 3: the new trust set (trust-codec.ts)
 *   ? 3: roles: [* role],
 *   ? 4: source: tstr,                     ; the new update server
 *   ? 5: owner: bstr .cbor COSE_Key,       ; a new owner key (sale, or a lost key replaced)
 * }                                        ; at least one of 2+3, 4, 5
 * ```
 * RFC 9019 §2 and §6: the owner decides who may update the device, even
 * when the old vendor does not cooperate (end of life, a community taking
 * over). The old vendor's keys are not consulted: the owner's signature is
 * the whole authority. Installing new anchors also resets the revocation
 * state: the old issuer's list and sequence numbers mean nothing to the new
 * authority, and keeping them would let the old vendor pre-revoke the new
 * source's keys.
 *
 * Why a vendor cannot lock the owner out: a trust update can neither carry
 * nor drop the owner key (trust-update.ts: OWNER_REQUIRED, and the key is
 * carried over); it can raise the trust version by one per update only, so
 * the owner can always choose a higher one; revocation lists name anchors,
 * never the owner key. A stranger cannot take the device: only a signature
 * by the owner key counts (NOT_OWNER).
 *
 * A transfer names no device (privacy: the same bytes may travel in the
 * clear), so it is valid on every device holding that owner key below its
 * version. An owner who wants one device only gives each device its own
 * owner key at provisioning.
 */
import { CoapfwError } from '../errors.js';
import { decodeCbor, encodeCbor } from './cbor.js';
import { TRUST_KIND } from './constants.js';
import type { SuitPrivateKey, SuitPublicKey } from './keys.js';
import { suitLimits } from './limits.js';
import { SET_KEY, decodePublicKey, decodeTrustSetMembers, encodePublicKey, encodeTrustSetMembers, strictMembers } from './trust-codec.js';
import { decodeTrustDocument, encodeTrustDocument, matchTrustDocument, signTrustDocument, type TrustDocument } from './trust-document.js';
import { checkTrustState, trustLimits, type TrustAnchorEntry, type TrustLimits, type TrustRole, type TrustState } from './trust-set.js';
import { asText, asUint, malformed } from './values.js';

const OWNER = 5;

/** What a transfer of authority installs. */
export interface OwnerTransfer {
  /** The new trust version: above the device's. */
  readonly version: number;
  /** The new anchors and roles (both or neither). */
  readonly trust?: { readonly anchors: readonly TrustAnchorEntry[]; readonly roles: readonly TrustRole[] };
  /** The new update server (coap:// or coaps://). */
  readonly source?: string;
  /** A new owner key. */
  readonly owner?: SuitPublicKey;
}

function checkTransfer(t: OwnerTransfer, code: 'INVALID_ARGUMENT' | 'SUIT_MALFORMED', limits?: Partial<TrustLimits>): void {
  if (t.trust === undefined && t.source === undefined && t.owner === undefined) {
    throw new CoapfwError(code, 'owner transfer: it must install a trust set, a source or an owner key');
  }
  // Validate the parts through the one trust-state check, on a scratch state.
  const scratch: TrustState = {
    version: t.version,
    anchors: t.trust?.anchors ?? [],
    roles: t.trust?.roles ?? [],
    ...(t.source === undefined ? {} : { source: t.source }),
    ...(t.owner === undefined ? {} : { owner: t.owner }),
    revocation: { sequence: 0, revoked: [] },
  };
  checkTrustState(scratch, limits, code, 'owner transfer');
}

/** Create a transfer of authority signed by the owner's key. */
export function createOwnerTransfer(t: OwnerTransfer, ownerKey: SuitPrivateKey, limits?: Partial<TrustLimits>): Uint8Array {
  checkTransfer(t, 'INVALID_ARGUMENT', limits);
  const members: [number, unknown][] = t.trust
    ? encodeTrustSetMembers({ version: t.version, anchors: t.trust.anchors, roles: t.trust.roles, ...(t.source === undefined ? {} : { source: t.source }) })
    : [[SET_KEY.version, t.version], ...(t.source === undefined ? [] : [[SET_KEY.source, t.source] as [number, unknown]])];
  if (t.owner) members.push([OWNER, encodePublicKey(t.owner)]);
  const doc = encodeTrustDocument(TRUST_KIND.ownerTransfer, encodeCbor(new Map(members)));
  return signTrustDocument(doc, [ownerKey], limits);
}

/** Decode a transfer of authority (structure only; nothing verified). */
export function decodeOwnerTransfer(bytes: Uint8Array, limits?: Partial<TrustLimits>): { document: TrustDocument; transfer: OwnerTransfer } {
  const lim = trustLimits(limits);
  const document = decodeTrustDocument(bytes, TRUST_KIND.ownerTransfer, lim);
  const m = strictMembers(decodeCbor(document.body, suitLimits(), 'owner transfer'), [...Object.values(SET_KEY), OWNER], 'owner transfer');
  if (m.has(SET_KEY.anchors) !== m.has(SET_KEY.roles)) throw malformed('owner transfer: anchors (2) and roles (3) come together');
  const version = asUint(m.get(SET_KEY.version), 'owner transfer version');
  const set = m.has(SET_KEY.anchors) ? decodeTrustSetMembers(m, lim, 'owner transfer') : undefined;
  const source = m.has(SET_KEY.source) ? asText(m.get(SET_KEY.source), 'owner transfer source') : undefined;
  const transfer: OwnerTransfer = {
    version,
    ...(set ? { trust: { anchors: set.anchors, roles: set.roles } } : {}),
    ...(source === undefined ? {} : { source }),
    ...(m.has(OWNER) ? { owner: decodePublicKey(m.get(OWNER), 'owner transfer owner key') } : {}),
  };
  checkTransfer(transfer, 'SUIT_MALFORMED', lim);
  return { document, transfer };
}

/**
 * Verify a transfer of authority and return the new state. Throws
 * DOCUMENT_TYPE, SUIT_MALFORMED, NO_OWNER (the device was provisioned
 * without an owner key), NOT_OWNER (not signed by the owner key),
 * TRUST_ROLLBACK (version not above the device's).
 */
export function applyOwnerTransfer(current: TrustState, bytes: Uint8Array, limits?: Partial<TrustLimits>): TrustState {
  checkTrustState(current, limits);
  const { document, transfer } = decodeOwnerTransfer(bytes, limits);
  const what = `owner transfer to trust version ${transfer.version}`;
  if (!current.owner) throw new CoapfwError('NO_OWNER', `${what}: this device has no owner credential, so no transfer of authority is possible`);
  if (matchTrustDocument(document, [{ publicKey: current.owner }]).signedBy.size === 0) {
    throw new CoapfwError('NOT_OWNER', `${what}: not signed by the device's owner key`);
  }
  if (transfer.version <= current.version) {
    throw new CoapfwError('TRUST_ROLLBACK', `${what}: the device is at trust version ${current.version}`);
  }
  const source = transfer.source ?? current.source;
  const owner = transfer.owner ?? current.owner;
  const next: TrustState = {
    version: transfer.version,
    anchors: transfer.trust?.anchors ?? current.anchors,
    roles: transfer.trust?.roles ?? current.roles,
    ...(source === undefined ? {} : { source }),
    owner,
    revocation: transfer.trust ? { sequence: 0, revoked: [] } : current.revocation,
  };
  checkTrustState(next, limits);
  return next;
}
