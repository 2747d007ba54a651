import { describe, expect, test } from 'vitest';
import { encodeCbor } from '../../src/suit/cbor.js';
import { TRUST_KIND } from '../../src/suit/constants.js';
import { encodeTrustDocument } from '../../src/suit/trust-document.js';
import {
  applyOwnerTransfer,
  applyRevocationList,
  applyTrustUpdate,
  createOwnerTransfer,
  createRevocationList,
  createTrustUpdate,
  decodeOwnerTransfer,
  initialTrustState,
  signTrustDocument,
  verifyFirmware,
  walkTrustChain,
  type TrustState,
} from '../../src/suit/index.js';
import { K, anchors, boardSet, boardState, codeOf, firmware, radioRole, trustRoleOf } from './trust-helpers.js';

/** The community's trust set: one key for everything. */
const community = {
  anchors: anchors('community'),
  roles: [trustRoleOf(['community'], 1), { name: 'all', scope: { kind: 'any-component' as const }, signers: ['community'], threshold: 1 }],
};

describe('owner transfer of authority', () => {
  const v1 = boardState();

  test('the owner installs a new source and anchors without the old vendor', () => {
    const t = createOwnerTransfer({ version: 10, trust: community, source: 'coaps://community.example/fw' }, K.owner);
    const s = applyOwnerTransfer(v1, t);
    expect(s).toMatchObject({ version: 10, source: 'coaps://community.example/fw', owner: K.owner.publicKey, revocation: { sequence: 0, revoked: [] } });
    expect(verifyFirmware(firmware('radio', [K.community]), { trust: s }).roles[0]!.role.name).toBe('all');
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1]), { trust: s }))).toBe('UNTRUSTED_KEY');
    // The new authority's chain continues from the transfer's version.
    expect(applyTrustUpdate(s, createTrustUpdate({ version: 11, ...community, source: 'coaps://c2.example/' }, [K.community])).version).toBe(11);
  });

  test('a source change alone keeps the anchors and the revocation list', () => {
    const revoked = applyRevocationList(v1, createRevocationList({ sequence: 4, revoked: [K.a1.publicKey] }, [K.t1, K.t2])).state;
    const s = applyOwnerTransfer(revoked, createOwnerTransfer({ version: 2, source: 'coap://mirror.example/' }, K.owner));
    expect(s).toMatchObject({ version: 2, source: 'coap://mirror.example/', anchors: revoked.anchors, roles: revoked.roles, revocation: revoked.revocation });
  });

  test('new anchors reset the revocation state: the old issuer cannot pre-revoke the new source', () => {
    const hostile = applyRevocationList(v1, createRevocationList({ sequence: 9, revoked: [K.community.publicKey] }, [K.t1, K.t2])).state;
    const s = applyOwnerTransfer(hostile, createOwnerTransfer({ version: 5, trust: community }, K.owner));
    expect(s.revocation).toEqual({ sequence: 0, revoked: [] });
    expect(verifyFirmware(firmware('app', [K.community]), { trust: s }).roles.length).toBe(1);
  });

  test('a stranger, the vendor or the integrator cannot take the device', () => {
    const body = { version: 10, trust: community, source: 'coaps://evil.example/' };
    for (const k of [K.stranger, K.a1, K.t1]) expect(codeOf(() => applyOwnerTransfer(v1, createOwnerTransfer(body, k)))).toBe('NOT_OWNER');
    // Adding the owner's name is not enough: an unsigned transfer, or the owner's signature over another body.
    const unsigned = encodeTrustDocument(TRUST_KIND.ownerTransfer, decodeOwnerTransfer(createOwnerTransfer(body, K.stranger)).document.body);
    expect(codeOf(() => applyOwnerTransfer(v1, unsigned))).toBe('NOT_OWNER');
    const genuine = decodeOwnerTransfer(createOwnerTransfer({ version: 10, source: 'coaps://ok.example/' }, K.owner)).document;
    const spliced = encodeTrustDocument(TRUST_KIND.ownerTransfer, decodeOwnerTransfer(unsigned).document.body, [encodeSig(genuine)]);
    expect(codeOf(() => applyOwnerTransfer(v1, spliced))).toBe('NOT_OWNER');
  });

  test('a device without an owner credential refuses every transfer', () => {
    const ownerless = initialTrustState(boardSet());
    expect(codeOf(() => applyOwnerTransfer(ownerless, createOwnerTransfer({ version: 10, trust: community }, K.owner)))).toBe('NO_OWNER');
  });

  test('the version must be above the device\'s (replays of older transfers are refused)', () => {
    const t5 = createOwnerTransfer({ version: 5, source: 'coap://a.example/' }, K.owner);
    const s = applyOwnerTransfer(v1, createOwnerTransfer({ version: 6, source: 'coap://b.example/' }, K.owner));
    expect(codeOf(() => applyOwnerTransfer(s, t5))).toBe('TRUST_ROLLBACK');
    expect(codeOf(() => applyOwnerTransfer(v1, createOwnerTransfer({ version: 1, source: 'coap://a.example/' }, K.owner)))).toBe('TRUST_ROLLBACK');
  });

  test('the owner hands over ownership; the old owner key then counts for nothing', () => {
    const sold = applyOwnerTransfer(v1, createOwnerTransfer({ version: 2, owner: K.owner2.publicKey }, K.owner));
    expect(sold.owner).toEqual(K.owner2.publicKey);
    expect(sold.anchors).toEqual(v1.anchors);
    expect(codeOf(() => applyOwnerTransfer(sold, createOwnerTransfer({ version: 3, owner: K.owner.publicKey }, K.owner)))).toBe('NOT_OWNER');
    expect(applyOwnerTransfer(sold, createOwnerTransfer({ version: 3, trust: community }, K.owner2)).version).toBe(3);
  });

  test('a vendor cannot lock the owner out', () => {
    // 1. A vendor-signed trust update keeps the owner key (it cannot carry one: trust-update.test.ts).
    const v2 = applyTrustUpdate(v1, createTrustUpdate({ ...boardSet(2), roles: [trustRoleOf(['t1'], 1), radioRole(['a1']), boardSet().roles[2]!] }, [K.t1, K.t2]));
    expect(v2.owner).toEqual(K.owner.publicKey);
    // 2. Revoking the owner's key has no effect on transfers.
    const listed = applyRevocationList(v2, createRevocationList({ sequence: 1, revoked: [K.owner.publicKey] }, [K.t1])).state;
    // 3. The vendor can raise the version by one per update only; the owner picks any higher one.
    const far = applyOwnerTransfer(listed, createOwnerTransfer({ version: 1000, trust: community }, K.owner));
    expect(far.version).toBe(1000);
    expect(codeOf(() => applyTrustUpdate(listed, createTrustUpdate({ ...boardSet(2 ** 52), roles: [trustRoleOf(['t1'], 1)] }, [K.t1])))).toBe('TRUST_VERSION_GAP');
    // 4. A set without any trust role (the vendor froze trust) still yields to the owner.
    const frozen: TrustState = { ...listed, roles: listed.roles.filter((r) => r.scope.kind !== 'trust') };
    expect(applyOwnerTransfer(frozen, createOwnerTransfer({ version: 3, trust: community }, K.owner)).roles).toHaveLength(2);
  });

  test('transfers in the server\'s chain are applied in their place', () => {
    const t = createOwnerTransfer({ version: 3, trust: community, source: 'coaps://community.example/' }, K.owner);
    const u4 = createTrustUpdate({ version: 4, ...community, source: 'coaps://community.example/v2' }, [K.community]);
    const v2 = createTrustUpdate({ ...boardSet(2), source: 'coap://v2.example/' }, [K.t1, K.t2]);
    const walk = walkTrustChain(v1, [u4, t, v2]);
    expect(walk.error).toBeUndefined();
    expect(walk.applied).toEqual([2, 3, 4]);
    expect(walk.state.source).toBe('coaps://community.example/v2');
  });

  test('malformed transfers: nothing to install, anchors without roles, an invalid source', () => {
    expect(codeOf(() => createOwnerTransfer({ version: 3 }, K.owner))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createOwnerTransfer({ version: 3, source: 'http://x.example/' }, K.owner))).toBe('INVALID_ARGUMENT');
    const half = signTrustDocument(encodeTrustDocument(TRUST_KIND.ownerTransfer, encodeCbor(new Map<number, unknown>([[1, 3], [2, []]]))), [K.owner]);
    expect(codeOf(() => applyOwnerTransfer(v1, half))).toBe('SUIT_MALFORMED');
    const empty = signTrustDocument(encodeTrustDocument(TRUST_KIND.ownerTransfer, encodeCbor(new Map<number, unknown>([[1, 3]]))), [K.owner]);
    expect(codeOf(() => applyOwnerTransfer(v1, empty))).toBe('SUIT_MALFORMED');
  });
});

/** The encoded first signature of a decoded document (re-signed: same key, same body). */
function encodeSig(doc: ReturnType<typeof decodeOwnerTransfer>['document']): Uint8Array {
  const s = doc.signatures[0]!;
  return encodeCbor([Buffer.from(s.protectedBytes), new Map(), null, Buffer.from(s.signature)]);
}
