import { describe, expect, test } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import { bstr, encodeCbor } from '../../src/suit/cbor.js';
import { TRUST_KIND } from '../../src/suit/constants.js';
import { encodeTrustDocument } from '../../src/suit/trust-document.js';
import {
  applyRevocationList,
  applyTrustUpdate,
  createRevocationList,
  createTrustUpdate,
  decodeRevocationList,
  keyThumbprint,
  signTrustDocument,
  verifyFirmware,
  type TrustState,
} from '../../src/suit/index.js';
import { K, anchors, boardState, codeOf, firmware, radioRole } from './trust-helpers.js';

const tp = (k: typeof K.a1): Uint8Array => keyThumbprint(k.publicKey);

describe('revocation list', () => {
  const v1 = boardState();

  test('once list N is held, envelopes signed only by its keys are refused', () => {
    const list = createRevocationList({ sequence: 1, revoked: [K.a1.publicKey] }, [K.t1, K.t2]);
    const { state, changed } = applyRevocationList(v1, list);
    expect(changed).toBe(true);
    expect(state.revocation).toEqual({ sequence: 1, digest: sha256(decodeRevocationList(list).document.body), revoked: [tp(K.a1)] });
    expect(verifyFirmware(firmware('radio', [K.a1]), { trust: v1 }).roles[0]!.counted).toEqual(['a1']);
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1]), { trust: state }))).toBe('KEY_REVOKED');
    expect(verifyFirmware(firmware('app', [K.b1]), { trust: state }).roles[0]!.counted).toEqual(['b1']);
  });

  test('never accepts an older list; the same list again changes nothing; another list under the same number is a conflict', () => {
    const l1 = createRevocationList({ sequence: 1, revoked: [K.a1.publicKey] }, [K.t1, K.t2]);
    const l2 = createRevocationList({ sequence: 2, revoked: [K.a1.publicKey, K.b1.publicKey] }, [K.t2, K.t3]);
    const s2 = applyRevocationList(applyRevocationList(v1, l1).state, l2).state;
    expect(s2.revocation.sequence).toBe(2);
    expect(codeOf(() => applyRevocationList(s2, l1))).toBe('REVOCATION_ROLLBACK');
    // Same bytes (even signed by other members of the role): no change.
    expect(applyRevocationList(s2, l2)).toEqual({ state: s2, changed: false });
    expect(applyRevocationList(s2, signTrustDocument(createRevocationList({ sequence: 2, revoked: [K.b1.publicKey, K.a1.publicKey] }), [K.t1, K.t3])).changed).toBe(false);
    const other = createRevocationList({ sequence: 2, revoked: [K.b1.publicKey] }, [K.t1, K.t2]);
    expect(codeOf(() => applyRevocationList(s2, other))).toBe('REVOCATION_CONFLICT');
    // An unsigned list under the held number is not evidence of anything: it fails its signatures first.
    expect(codeOf(() => applyRevocationList(s2, createRevocationList({ sequence: 2, revoked: [] })))).toBe('TRUST_THRESHOLD');
    // A newer list replaces the older one (it is complete), so the trust role can undo a mistake.
    const l3 = applyRevocationList(s2, createRevocationList({ sequence: 3, revoked: [K.b1.publicKey] }, [K.t1, K.t2])).state;
    expect(l3.revocation.revoked).toEqual([tp(K.b1)]);
    expect(verifyFirmware(firmware('radio', [K.a1]), { trust: l3 }).roles[0]!.counted).toEqual(['a1']);
  });

  test('only the trust role signs lists, with its threshold; a revoked key cannot un-revoke itself', () => {
    const list = createRevocationList({ sequence: 1, revoked: [K.b1.publicKey] }, []);
    expect(codeOf(() => applyRevocationList(v1, signTrustDocument(list, [K.a1])))).toBe('KEY_NOT_AUTHORIZED');
    expect(codeOf(() => applyRevocationList(v1, signTrustDocument(list, [K.t1])))).toBe('TRUST_THRESHOLD');
    const t1Revoked = applyRevocationList(v1, createRevocationList({ sequence: 1, revoked: [K.t1.publicKey] }, [K.t2, K.t3])).state;
    // t1 (stolen) and one accomplice key cannot publish list 2 without t1.
    const undo = createRevocationList({ sequence: 2, revoked: [] }, [K.t1, K.t2]);
    expect(codeOf(() => applyRevocationList(t1Revoked, undo))).toBe('KEY_REVOKED');
    // Nor can it sign a trust update.
    const v2 = { ...t1Revoked, version: 2, source: 'coap://evil.example/' };
    expect(codeOf(() => applyTrustUpdate(t1Revoked, createTrustUpdate(v2, [K.t1, K.t2])))).toBe('KEY_REVOKED');
    expect(applyTrustUpdate(t1Revoked, createTrustUpdate(v2, [K.t2, K.t3])).version).toBe(2);
  });

  test('a revocation outlives rotation: a revoked key put back into a role counts for nothing', () => {
    const revoked = applyRevocationList(v1, createRevocationList({ sequence: 1, revoked: [K.a1.publicKey] }, [K.t1, K.t2])).state;
    const back: TrustState = { ...revoked, anchors: [...revoked.anchors, ...anchors('a2')], roles: revoked.roles.map((r) => (r.name === 'radio' ? radioRole(['a1', 'a2']) : r)) };
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1]), { trust: back }))).toBe('KEY_REVOKED');
    expect(verifyFirmware(firmware('radio', [K.a1, K.a2]), { trust: back }).roles[0]!.counted).toEqual(['a2']);
  });

  test('a set without a trust role cannot take revocation lists', () => {
    const noTrust: TrustState = { ...v1, roles: v1.roles.filter((r) => r.scope.kind !== 'trust') };
    expect(codeOf(() => applyRevocationList(noTrust, createRevocationList({ sequence: 1, revoked: [] }, [K.t1, K.t2])))).toBe('TRUST_NO_POLICY');
  });

  test('malformed lists: unsorted, duplicate, short thumbprints, sequence 0, too many keys', () => {
    const doc = (m: Map<number, unknown>): Uint8Array => signTrustDocument(encodeTrustDocument(TRUST_KIND.revocationList, encodeCbor(m)), [K.t1, K.t2]);
    const [lo, hi] = [tp(K.a1), tp(K.b1)].sort((x, y) => Buffer.compare(x, y));
    expect(codeOf(() => applyRevocationList(v1, doc(new Map<number, unknown>([[1, 1], [2, [bstr(hi!), bstr(lo!)]]]))))).toBe('SUIT_MALFORMED');
    expect(codeOf(() => applyRevocationList(v1, doc(new Map<number, unknown>([[1, 1], [2, [bstr(lo!), bstr(lo!)]]]))))).toBe('SUIT_MALFORMED');
    expect(codeOf(() => applyRevocationList(v1, doc(new Map<number, unknown>([[1, 1], [2, [bstr(lo!.subarray(0, 16))]]]))))).toBe('SUIT_MALFORMED');
    expect(codeOf(() => applyRevocationList(v1, doc(new Map<number, unknown>([[1, 0], [2, []]]))))).toBe('SUIT_MALFORMED');
    expect(codeOf(() => applyRevocationList(v1, doc(new Map<number, unknown>([[1, 1]]))))).toBe('SUIT_MALFORMED');
    expect(codeOf(() => applyRevocationList(v1, doc(new Map<number, unknown>([[1, 1], [2, []], [3, 'x']]))))).toBe('SUIT_UNSUPPORTED');
    const many = Array.from({ length: 33 }, (_, i) => sha256(Uint8Array.of(i)));
    expect(codeOf(() => createRevocationList({ sequence: 1, revoked: many }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createRevocationList({ sequence: 1, revoked: [K.a1.publicKey, tp(K.a1)] }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => createRevocationList({ sequence: 0, revoked: [] }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => decodeRevocationList(createRevocationList({ sequence: 1, revoked: many.slice(0, 10) }), { maxRevoked: 9 }))).toBe('SUIT_LIMIT');
  });
});
