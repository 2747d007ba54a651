/**
 * Attacks in the style of TUF's threat model (TUF specification §1.5.2:
 * arbitrary installation, rollback, mix-and-match, key compromise, and
 * confusion of metadata kinds), each refused with a typed error, the
 * device's trust state untouched.
 */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { CoapfwError } from '../../src/errors.js';
import { TRUST_KIND } from '../../src/suit/constants.js';
import { signSign1 } from '../../src/suit/cose.js';
import { decodeTrustDocument, encodeTrustDocument, trustAad } from '../../src/suit/trust-document.js';
import {
  applyOwnerTransfer,
  applyRevocationList,
  applyTrustUpdate,
  createOwnerTransfer,
  createRevocationList,
  createTrustUpdate,
  decodeEnvelope,
  decodeTrustChain,
  signTrustDocument,
  verifyEnvelope,
  verifyFirmware,
  walkTrustChain,
  type TrustSet,
  type TrustState,
} from '../../src/suit/index.js';
import { K, anchors, boardState, codeOf, firmware, radioRole } from './trust-helpers.js';

const v1 = boardState();
const s2: TrustSet = { ...v1, version: 2, anchors: [...v1.anchors.filter((a) => a.name !== 'a1'), ...anchors('a2')], roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['a2']) : r)) };
const u2 = createTrustUpdate(s2, [K.a1, K.a2]);
const v2 = applyTrustUpdate(v1, u2);
const list1 = createRevocationList({ sequence: 1, revoked: [K.b1.publicKey] }, [K.t1, K.t2]);
const list2 = createRevocationList({ sequence: 2, revoked: [K.b1.publicKey, K.stranger.publicKey] }, [K.t1, K.t2]);
const v2r = applyRevocationList(applyRevocationList(v2, list1).state, list2).state;

/** The relabelled document: same body and signatures, another kind. */
function relabel(doc: Uint8Array, kind: 1 | 2 | 3): Uint8Array {
  const d = decodeTrustDocument(doc);
  const sigs = d.signatures.map((s) => signSign1AsEncoded(s));
  return encodeTrustDocument(kind, d.body, sigs);
}
function signSign1AsEncoded(s: ReturnType<typeof decodeTrustDocument>['signatures'][number]): Uint8Array {
  // Re-encode a decoded COSE_Sign1 as it was (protected bytes and signature unchanged).
  return Uint8Array.from(Buffer.concat([Buffer.of(0xd2, 0x84), cborBstr(s.protectedBytes), Buffer.of(0xa0, 0xf6), cborBstr(s.signature)]));
}
function cborBstr(b: Uint8Array): Buffer {
  const n = b.length;
  const head = n < 24 ? Buffer.of(0x40 + n) : n < 256 ? Buffer.of(0x58, n) : Buffer.of(0x59, n >> 8, n & 0xff);
  return Buffer.concat([head, Buffer.from(b)]);
}

const attacks: [string, (s: TrustState) => unknown, TrustState, string][] = [
  ['firmware signed by a rotated-out key', (s) => verifyFirmware(firmware('radio', [K.a1], 99), { trust: s }), v2, 'UNTRUSTED_KEY'],
  ['firmware signed by a revoked key', (s) => verifyFirmware(firmware('app', [K.b1], 99), { trust: s }), v2r, 'KEY_REVOKED'],
  ["firmware signed by another vendor's key for a component it does not own", (s) => verifyFirmware(firmware('radio', [K.b1]), { trust: s }), v1, 'KEY_NOT_AUTHORIZED'],
  ['firmware signed by an arbitrary key (arbitrary installation)', (s) => verifyFirmware(firmware('radio', [K.stranger]), { trust: s }), v1, 'UNTRUSTED_KEY'],
  ['a trust update signed only by the new keys', (s) => applyTrustUpdate(s, createTrustUpdate(s2, [K.a2])), v1, 'TRUST_THRESHOLD'],
  ['a trust update signed only by the old keys', (s) => applyTrustUpdate(s, createTrustUpdate(s2, [K.a1])), v1, 'TRUST_THRESHOLD'],
  ['a trust update with a lower version (replay of v2 at v2)', (s) => applyTrustUpdate(s, u2), v2, 'TRUST_ROLLBACK'],
  ['a trust update jumping versions', (s) => applyTrustUpdate(s, createTrustUpdate({ ...s2, version: 7 }, [K.a1, K.a2])), v1, 'TRUST_VERSION_GAP'],
  ['a replayed older revocation list', (s) => applyRevocationList(s, list1), v2r, 'REVOCATION_ROLLBACK'],
  ['two lists under one number', (s) => applyRevocationList(s, createRevocationList({ sequence: 2, revoked: [] }, [K.t1, K.t2])), v2r, 'REVOCATION_CONFLICT'],
  ['mix-and-match: the rotation applied, then an old manifest signed with the rotated-out key', (s) => verifyFirmware(firmware('radio', [K.a1], 3), { trust: s }), v2, 'UNTRUSTED_KEY'],
  ['mix-and-match: the v2 body with the v2 signatures moved onto a forged v2 body', (s) => applyTrustUpdate(s, encodeTrustDocument(TRUST_KIND.trustUpdate, decodeTrustDocument(createTrustUpdate({ ...s2, source: 'coap://evil.example/' })).body, decodeTrustDocument(u2).signatures.map(signSign1AsEncoded))), v1, 'TRUST_THRESHOLD'],
  ['mix-and-match: a chain of v2 and an old trust set re-labelled v3', (s) => { const w = walkTrustChain(s, [u2, createTrustUpdate({ ...v1, version: 3 }, [K.a1])]); throw w.error; }, v1, 'TRUST_THRESHOLD'],
  ['a transfer of authority signed by a stranger', (s) => applyOwnerTransfer(s, createOwnerTransfer({ version: 9, source: 'coap://evil.example/' }, K.stranger)), v1, 'NOT_OWNER'],
  ['a transfer of authority signed by the vendor', (s) => applyOwnerTransfer(s, createOwnerTransfer({ version: 9, source: 'coap://evil.example/' }, K.t1)), v1, 'NOT_OWNER'],
  ['kind confusion: a revocation list relabelled as a trust update', (s) => applyTrustUpdate(s, relabel(list1, 1)), v1, 'SUIT_MALFORMED'],
  ['kind confusion: a trust update relabelled as an owner transfer', (s) => applyOwnerTransfer(s, relabel(createTrustUpdate({ ...s2, roles: s2.roles }, [K.owner]), 3)), v1, 'NOT_OWNER'],
];

describe('attacks (TUF threat model): each refused with a typed error, the trust state untouched', () => {
  test.each(attacks)('%s', (_name, run, state, code) => {
    const before = structuredClone(state);
    expect(codeOf(() => run(state))).toBe(code);
    expect(state).toEqual(before);
  });

  test('signatures are bound to their kind by the external AAD: a trust update signed as a revocation list does not verify', () => {
    const body = decodeTrustDocument(createTrustUpdate(s2)).body;
    const asList = signTrustDocument(encodeTrustDocument(TRUST_KIND.revocationList, body), [K.a1, K.a2]);
    expect(codeOf(() => applyTrustUpdate(v1, relabel(asList, 1)))).toBe('TRUST_THRESHOLD');
    // And a signature with the right AAD but without the trust content type is not even tried.
    const bare = signSign1(body, K.a1, { externalAad: trustAad(TRUST_KIND.trustUpdate) });
    const typed = signSign1(body, K.a2, { externalAad: trustAad(TRUST_KIND.trustUpdate), contentType: 'application/coapfw-trust+cbor' });
    expect(codeOf(() => applyTrustUpdate(v1, encodeTrustDocument(TRUST_KIND.trustUpdate, body, [bare, typed])))).toBe('TRUST_THRESHOLD');
  });
});

describe('document types cannot be confused', () => {
  const manifest = firmware('radio', [K.a1]);
  test('a trust document fed to the manifest decoder and verifiers: DOCUMENT_TYPE', () => {
    for (const doc of [u2, list1, createOwnerTransfer({ version: 9, source: 'coap://x.example/' }, K.owner)]) {
      expect(codeOf(() => decodeEnvelope(doc))).toBe('DOCUMENT_TYPE');
      expect(codeOf(() => verifyEnvelope(doc, { trust: { anchors: [{ publicKey: K.a1.publicKey }] } }))).toBe('DOCUMENT_TYPE');
      expect(codeOf(() => verifyFirmware(doc, { trust: v1 }))).toBe('DOCUMENT_TYPE');
    }
  });
  test('a manifest fed to the trust verifiers: DOCUMENT_TYPE; one kind for another: DOCUMENT_TYPE', () => {
    expect(codeOf(() => applyTrustUpdate(v1, manifest))).toBe('DOCUMENT_TYPE');
    expect(codeOf(() => applyRevocationList(v1, manifest))).toBe('DOCUMENT_TYPE');
    expect(codeOf(() => applyOwnerTransfer(v1, manifest))).toBe('DOCUMENT_TYPE');
    expect(codeOf(() => applyOwnerTransfer(v1, manifest.subarray(2)))).toBe('DOCUMENT_TYPE'); // untagged envelope map
    expect(codeOf(() => applyTrustUpdate(v1, list1))).toBe('DOCUMENT_TYPE');
    expect(codeOf(() => applyRevocationList(v1, u2))).toBe('DOCUMENT_TYPE');
    expect(codeOf(() => applyOwnerTransfer(v1, u2))).toBe('DOCUMENT_TYPE');
  });

  test('fuzz: random and mutated bytes into every trust decoder give typed errors only', () => {
    const seeds = [u2, list2, createOwnerTransfer({ version: 9, source: 'coap://x.example/' }, K.owner)];
    const all = (b: Uint8Array): void => {
      for (const f of [() => applyTrustUpdate(v1, b), () => applyRevocationList(v2r, b), () => applyOwnerTransfer(v1, b), () => decodeTrustChain(b), () => walkTrustChain(v1, [b])]) {
        try {
          f();
        } catch (e) {
          if (!(e instanceof CoapfwError)) throw e;
        }
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => all(Uint8Array.from([0xda, 0x63, 0x66, 0x74, 0x72, ...b]))), { numRuns: 300 });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: seeds.length - 1 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), (i, flips) => {
        const b = seeds[i]!.slice();
        for (const [at, v] of flips) b[at % b.length] = v;
        all(b);
      }),
      { numRuns: 150 },
    );
  });
});
