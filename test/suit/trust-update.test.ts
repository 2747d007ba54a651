import { describe, expect, test } from 'vitest';
import { encodeCbor } from '../../src/suit/cbor.js';
import { TRUST_KIND } from '../../src/suit/constants.js';
import { encodeTrustDocument } from '../../src/suit/trust-document.js';
import { encodeTrustSetMembers, encodePublicKey } from '../../src/suit/trust-codec.js';
import {
  applyTrustUpdate,
  createTrustUpdate,
  decodeTrustChain,
  decodeTrustUpdate,
  encodeTrustChain,
  keyThumbprint,
  createRevocationList,
  signTrustDocument,
  trustChange,
  verifyFirmware,
  walkTrustChain,
  type TrustSet,
  type TrustState,
} from '../../src/suit/index.js';
import { K, anchors, appRole, boardSet, boardState, codeOf, firmware, radioRole, trustRoleOf } from './trust-helpers.js';

/** Vendor A rotates a1 -> a2 on top of `from`. */
function rotateRadio(from: TrustSet): TrustSet {
  return {
    ...from,
    version: from.version + 1,
    anchors: [...from.anchors.filter((a) => a.name !== 'a1'), ...anchors('a2')],
    roles: from.roles.map((r) => (r.name === 'radio' ? radioRole(['a2']) : r)),
  };
}

describe('trust update: the TUF root rotation rule per role', () => {
  const v1 = boardState();

  test('a vendor rotates its own key with the old and the new key, without the other vendor or the integrator', () => {
    const next = rotateRadio(v1);
    expect(trustChange(v1, next)).toEqual({ roles: [{ current: v1.roles[1], next: next.roles[1] }], structural: false });
    const v2 = applyTrustUpdate(v1, createTrustUpdate(next, [K.a1, K.a2]));
    expect(v2.version).toBe(2);
    expect(v2.owner).toEqual(v1.owner);
    expect(v2.revocation).toEqual(v1.revocation);
    expect(verifyFirmware(firmware('radio', [K.a2]), { trust: v2 }).roles[0]!.counted).toEqual(['a2']);
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1]), { trust: v2 }))).toBe('UNTRUSTED_KEY');
  });

  test('signed only by the new keys, or only by the old, is refused', () => {
    const next = createTrustUpdate(rotateRadio(v1));
    expect(codeOf(() => applyTrustUpdate(v1, signTrustDocument(next, [K.a2])))).toBe('TRUST_THRESHOLD');
    expect(codeOf(() => applyTrustUpdate(v1, signTrustDocument(next, [K.a1])))).toBe('TRUST_THRESHOLD');
    expect(codeOf(() => applyTrustUpdate(v1, next))).toBe('TRUST_THRESHOLD');
    // Multi-party signing, one party at a time, gives the same document as signing at once.
    expect(applyTrustUpdate(v1, signTrustDocument(signTrustDocument(next, [K.a2]), [K.a1])).version).toBe(2);
  });

  test('the version must be exactly one above: lower or equal is TRUST_ROLLBACK, a jump is TRUST_VERSION_GAP', () => {
    const at3: TrustState = { ...v1, version: 3 };
    for (const version of [1, 2, 3]) {
      expect(codeOf(() => applyTrustUpdate(at3, createTrustUpdate({ ...rotateRadio(at3), version }, [K.a1, K.a2])))).toBe('TRUST_ROLLBACK');
    }
    expect(codeOf(() => applyTrustUpdate(at3, createTrustUpdate({ ...rotateRadio(at3), version: 5 }, [K.a1, K.a2])))).toBe('TRUST_VERSION_GAP');
    expect(applyTrustUpdate(at3, createTrustUpdate(rotateRadio(at3), [K.a1, K.a2])).version).toBe(4);
  });

  test("a vendor cannot change another vendor's role", () => {
    // Vendor B puts its own key into the radio role: the current radio role (a1) must sign.
    const grab: TrustSet = { ...v1, version: 2, roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['a1', 'b1']) : r)) };
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate(grab, [K.b1])))).toBe('KEY_NOT_AUTHORIZED');
    // With one integrator key (the trust role needs two) it still fails.
    const swap: TrustSet = { ...v1, version: 2, roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['b1']) : r)) };
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate(swap, [K.b1, K.t1])))).toBe('KEY_NOT_AUTHORIZED');
  });

  test('the trust role re-keys a vendor whose key was revoked (or lost); the new key must still sign', () => {
    const revoked: TrustState = { ...v1, revocation: { sequence: 1, digest: new Uint8Array(32), revoked: [keyThumbprint(K.a1.publicKey)] } };
    const next = rotateRadio(revoked);
    // The vendor cannot do it itself any more: its current key counts for nothing.
    expect(codeOf(() => applyTrustUpdate(revoked, createTrustUpdate(next, [K.a1, K.a2])))).toBe('KEY_REVOKED');
    // The integrator without the new key: the new role is not proven.
    expect(codeOf(() => applyTrustUpdate(revoked, createTrustUpdate(next, [K.t1, K.t2])))).toBe('KEY_NOT_AUTHORIZED');
    const v2 = applyTrustUpdate(revoked, createTrustUpdate(next, [K.t1, K.t2, K.a2]));
    expect(verifyFirmware(firmware('radio', [K.a2]), { trust: v2 }).roles[0]!.counted).toEqual(['a2']);
  });

  test('structural changes (a role added, removed or re-scoped, a new source) need the trust role, old and new', () => {
    const added: TrustSet = { ...v1, version: 2, anchors: [...v1.anchors, ...anchors('b2')], roles: [...v1.roles, { name: 'sensor', scope: { kind: 'component', componentId: [Uint8Array.of(2)] }, signers: ['b2'], threshold: 1 }] };
    expect(trustChange(v1, added).structural).toBe(true);
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate(added, [K.b2])))).toBe('TRUST_THRESHOLD');
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate(added, [K.b2, K.t1])))).toBe('TRUST_THRESHOLD');
    expect(applyTrustUpdate(v1, createTrustUpdate(added, [K.b2, K.t1, K.t3])).roles).toHaveLength(4);

    const removed: TrustSet = { ...v1, version: 2, roles: v1.roles.filter((r) => r.name !== 'app') };
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate(removed, [K.b1])))).toBe('KEY_NOT_AUTHORIZED');
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate(removed, [K.b1, K.t3])))).toBe('TRUST_THRESHOLD');
    expect(applyTrustUpdate(v1, createTrustUpdate(removed, [K.t1, K.t2])).roles).toHaveLength(2);

    // Vendor A widening its role to every component would make every update need it.
    const widened: TrustSet = { ...v1, version: 2, roles: v1.roles.map((r) => (r.name === 'radio' ? { ...r, scope: { kind: 'any-component' as const } } : r)) };
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate(widened, [K.a1])))).toBe('KEY_NOT_AUTHORIZED');

    const moved: TrustSet = { ...v1, version: 2, source: 'coaps://elsewhere.example/' };
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate(moved, [K.t1])))).toBe('TRUST_THRESHOLD');
    expect(applyTrustUpdate(v1, createTrustUpdate(moved, [K.t2, K.t3])).source).toBe('coaps://elsewhere.example/');

    // A version bump that changes nothing is structural too: nobody gets it for free.
    expect(codeOf(() => applyTrustUpdate(v1, createTrustUpdate({ ...v1, version: 2 }, [K.a1, K.b1])))).toBe('KEY_NOT_AUTHORIZED');
  });

  test('rotating the trust role itself: 2 of the current 3 and 2 of the new 3', () => {
    const next: TrustSet = {
      ...v1,
      version: 2,
      anchors: [...v1.anchors.filter((a) => a.name !== 't3'), ...anchors('community')],
      roles: v1.roles.map((r) => (r.name === 'trust' ? trustRoleOf(['t1', 't2', 'community'], 2) : r)),
    };
    const doc = createTrustUpdate(next);
    // t1 + t2 satisfy both the current and the new role.
    expect(applyTrustUpdate(v1, signTrustDocument(doc, [K.t1, K.t2])).version).toBe(2);
    // t3 + community: one current, one new... each role has only one of its own.
    expect(codeOf(() => applyTrustUpdate(v1, signTrustDocument(doc, [K.t3, K.community])))).toBe('TRUST_THRESHOLD');
    expect(applyTrustUpdate(v1, signTrustDocument(doc, [K.t1, K.t3, K.community])).version).toBe(2);
  });

  test('revoked keys count for nothing in either role', () => {
    const revoked: TrustState = { ...v1, revocation: { sequence: 1, digest: new Uint8Array(32), revoked: [keyThumbprint(K.a1.publicKey)] } };
    expect(codeOf(() => applyTrustUpdate(revoked, createTrustUpdate(rotateRadio(v1), [K.a1, K.a2])))).toBe('KEY_REVOKED');
  });

  test('a trust update can neither carry nor drop the owner key', () => {
    const body = encodeCbor(new Map<number, unknown>([...encodeTrustSetMembers({ ...v1, version: 2 }), [5, encodePublicKey(K.stranger.publicKey)]]));
    const doc = signTrustDocument(encodeTrustDocument(TRUST_KIND.trustUpdate, body), [K.t1, K.t2]);
    expect(codeOf(() => decodeTrustUpdate(doc))).toBe('OWNER_REQUIRED');
    expect(codeOf(() => applyTrustUpdate(v1, doc))).toBe('OWNER_REQUIRED');
    const moved = applyTrustUpdate(v1, createTrustUpdate({ ...v1, version: 2, source: 'coap://x.example/' }, [K.t1, K.t2]));
    expect(moved.owner).toEqual(K.owner.publicKey);
  });

  test('an update whose body names an unknown member is refused, not half understood', () => {
    const body = encodeCbor(new Map<number, unknown>([...encodeTrustSetMembers({ ...v1, version: 2 }), [9, 'restriction']]));
    expect(codeOf(() => applyTrustUpdate(v1, signTrustDocument(encodeTrustDocument(TRUST_KIND.trustUpdate, body), [K.t1, K.t2])))).toBe('SUIT_UNSUPPORTED');
  });

  test('an invalid new set is refused (threshold above its signers)', () => {
    const body = encodeCbor(new Map(encodeTrustSetMembers({ ...v1, version: 2 }).map(([k, v]) => (k === 3 ? [k, (v as unknown[][]).map((r) => [r[0], r[1], 9, r[3]])] : [k, v]))));
    expect(codeOf(() => applyTrustUpdate(v1, signTrustDocument(encodeTrustDocument(TRUST_KIND.trustUpdate, body), [K.t1, K.t2])))).toBe('SUIT_MALFORMED');
    expect(codeOf(() => createTrustUpdate({ ...v1, roles: [appRole(['b1'], 2)] }))).toBe('INVALID_ARGUMENT');
  });
});

describe('walkTrustChain: a device that missed several rotations', () => {
  // The server's chain: v2 rotates a1 -> a2, v3 adds b2 to the app role (1 of 2), v4 moves the source.
  const v1 = boardState();
  const s2 = rotateRadio(v1);
  const s3: TrustSet = { ...s2, version: 3, anchors: [...s2.anchors, ...anchors('b2')], roles: s2.roles.map((r) => (r.name === 'app' ? appRole(['b1', 'b2']) : r)) };
  const s4: TrustSet = { ...s3, version: 4, source: 'coaps://fw2.example.com/' };
  const chain = [createTrustUpdate(s2, [K.a1, K.a2]), createTrustUpdate(s3, [K.b1, K.b2]), createTrustUpdate(s4, [K.t1, K.t2])];

  test('applies v2, v3, v4 in order, in whatever order the server lists them', () => {
    const walk = walkTrustChain(v1, [chain[2]!, chain[0]!, chain[1]!]);
    expect(walk.error).toBeUndefined();
    expect(walk.applied).toEqual([2, 3, 4]);
    expect(walk.state).toMatchObject({ version: 4, source: 'coaps://fw2.example.com/', owner: K.owner.publicKey });
    expect(verifyFirmware(firmware('app', [K.b2]), { trust: walk.state }).roles[0]!.counted).toEqual(['b2']);
  });

  test('skips what the device already has; the same chain serves every device', () => {
    const at3 = walkTrustChain(v1, chain.slice(0, 2)).state;
    expect(walkTrustChain(at3, chain)).toMatchObject({ applied: [4], state: { version: 4 } });
    expect(walkTrustChain(walkTrustChain(at3, chain).state, chain)).toMatchObject({ applied: [], state: { version: 4 } });
  });

  test('stops at a missing link or a bad document, keeping the verified prefix', () => {
    const gap = walkTrustChain(v1, [chain[0]!, chain[2]!]);
    expect(gap.applied).toEqual([2]);
    expect(gap.state.version).toBe(2);
    expect(gap.error?.code).toBe('TRUST_VERSION_GAP');
    const forged = createTrustUpdate({ ...s3, roles: s3.roles.map((r) => (r.name === 'app' ? appRole(['b2']) : r)) }, [K.b2]);
    const bad = walkTrustChain(v1, [chain[0]!, forged, chain[2]!]);
    expect(bad).toMatchObject({ applied: [2], state: { version: 2 } });
    expect(bad.error?.code).toBe('TRUST_THRESHOLD');
    const garbage = walkTrustChain(v1, [chain[0]!, Uint8Array.of(1, 2, 3)]);
    expect(garbage).toMatchObject({ applied: [], state: v1 });
    expect(garbage.error?.code).toBe('SUIT_MALFORMED');
    expect(walkTrustChain(v1, Array.from({ length: 33 }, () => chain[0]!)).error?.code).toBe('SUIT_LIMIT');
  });

  test('the chain resource round-trips and is bounded', () => {
    expect(decodeTrustChain(encodeTrustChain(chain))).toEqual(chain);
    expect(codeOf(() => decodeTrustChain(encodeTrustChain(Array.from({ length: 33 }, () => chain[0]!))))).toBe('SUIT_LIMIT');
    expect(codeOf(() => decodeTrustChain(encodeCbor({ not: 'a list' })))).toBe('SUIT_MALFORMED');
  });

  test('a revocation list is not a chain link', () => {
    expect(walkTrustChain(v1, [createRevocationList({ sequence: 1, revoked: [] }, [K.t1, K.t2])]).error?.code).toBe('DOCUMENT_TYPE');
  });
});

test('boardSet is valid as given', () => {
  expect(boardSet().roles.map((r) => r.name)).toEqual(['trust', 'radio', 'app']);
});
