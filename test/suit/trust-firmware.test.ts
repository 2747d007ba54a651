import { describe, expect, test } from 'vitest';
import {
  CONDITION,
  DIRECTIVE,
} from '../../src/suit/constants.js';
import {
  assembleEnvelope,
  createEnvelope,
  createSignedEnvelope,
  encodeManifest,
  keyThumbprint,
  manifestDigest,
  trustStateFromPolicy,
  verifyEnvelope,
  verifyFirmware,
  type SuitCommand,
  type SuitPrivateKey,
  type TrustPolicy,
  type TrustState,
} from '../../src/suit/index.js';
import { signSign1 } from '../../src/suit/cose.js';
import { APP, CLASS_APP, CLASS_RADIO, K, RADIO, VENDOR_A, VENDOR_B, anchors, boardState, codeOf, firmware, radioRole } from './trust-helpers.js';

const cond = (code: number): SuitCommand => ({ kind: 'condition', code, policy: 15 });
const fetchImage: SuitCommand[] = [
  { kind: 'override-parameters', params: { uri: '/fw/x' } },
  { kind: 'directive', code: DIRECTIVE.fetch, policy: 2 },
];

/** A manifest touching both the radio (index 0) and the app (index 1). */
function bothParts(keys: SuitPrivateKey[]): Uint8Array {
  const shared: SuitCommand[] = [
    { kind: 'set-component-index', index: 0 },
    { kind: 'override-parameters', params: { vendorId: VENDOR_A, classId: CLASS_RADIO, imageDigest: { alg: -16, bytes: new Uint8Array(32) }, imageSize: 4 } },
    { kind: 'set-component-index', index: 1 },
    { kind: 'override-parameters', params: { vendorId: VENDOR_B, classId: CLASS_APP, imageDigest: { alg: -16, bytes: new Uint8Array(32) }, imageSize: 4 } },
    { kind: 'set-component-index', index: true },
    cond(CONDITION.vendorId),
  ];
  return createSignedEnvelope({ version: 1, sequenceNumber: 5n, components: [RADIO, APP], sharedSequence: shared, install: [{ kind: 'set-component-index', index: true }, ...fetchImage] }, keys);
}

describe('verifyFirmware: per-component roles', () => {
  const trust = boardState();

  test('each vendor signs its own part; the tally names who counted', () => {
    const radio = verifyFirmware(firmware('radio', [K.a1]), { trust });
    expect(radio.roles.map((r) => [r.role.name, r.counted])).toEqual([['radio', ['a1']]]);
    expect(radio.signedBy).toEqual([0]);
    expect(verifyFirmware(firmware('app', [K.b1]), { trust }).roles.map((r) => r.role.name)).toEqual(['app']);
  });

  test("another vendor's key for a component it does not own does not count", () => {
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.b1]), { trust }))).toBe('KEY_NOT_AUTHORIZED');
    expect(codeOf(() => verifyFirmware(firmware('app', [K.a1]), { trust }))).toBe('KEY_NOT_AUTHORIZED');
    // The integrator's trust keys govern trust, not firmware.
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.t1, K.t2]), { trust }))).toBe('KEY_NOT_AUTHORIZED');
  });

  test('a manifest touching two components needs both vendors', () => {
    expect(codeOf(() => verifyFirmware(bothParts([K.a1]), { trust }))).toBe('KEY_NOT_AUTHORIZED');
    expect(codeOf(() => verifyFirmware(bothParts([K.b1]), { trust }))).toBe('KEY_NOT_AUTHORIZED');
    const v = verifyFirmware(bothParts([K.b1, K.a1]), { trust });
    expect(v.roles.map((r) => [r.componentIndex, r.role.name])).toEqual([[0, 'radio'], [1, 'app']]);
  });

  test('a key of no anchor (stranger, or a rotated-out key) is UNTRUSTED_KEY; no signature at all is NO_SIGNATURE', () => {
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.stranger]), { trust }))).toBe('UNTRUSTED_KEY');
    expect(codeOf(() => verifyFirmware(firmware('radio', []), { trust }))).toBe('NO_SIGNATURE');
  });

  test('a component no role governs is refused, even when a trusted key signed it', () => {
    // Component [00] claiming vendor A: the app role is for vendor B, the radio role for component [01].
    const env = createEnvelope({ sequence: 3, vendorId: VENDOR_A, classId: CLASS_APP, uri: '/fw/x', digest: new Uint8Array(32), size: 1, componentId: APP }, [K.a1]);
    expect(codeOf(() => verifyFirmware(env, { trust }))).toBe('TRUST_NO_POLICY');
  });

  test("with the device's component table, claiming another vendor id does not move a component out of its vendor's role", () => {
    const components = [
      { componentId: RADIO, vendorId: VENDOR_A, classId: CLASS_RADIO },
      { componentId: APP, vendorId: VENDOR_B, classId: CLASS_APP },
    ];
    // Vendor A signs an app image claiming its own vendor id: the device knows the app is vendor B's.
    const env = createEnvelope({ sequence: 3, vendorId: VENDOR_A, classId: CLASS_APP, uri: '/fw/x', digest: new Uint8Array(32), size: 1, componentId: APP }, [K.a1]);
    expect(codeOf(() => verifyFirmware(env, { trust, components }))).toBe('KEY_NOT_AUTHORIZED');
    expect(verifyFirmware(firmware('app', [K.b1]), { trust, components }).roles.map((r) => r.role.name)).toEqual(['app']);
    // A component the device does not have.
    const other = createEnvelope({ sequence: 3, vendorId: VENDOR_B, classId: CLASS_APP, uri: '/fw/x', digest: new Uint8Array(32), size: 1, componentId: [Uint8Array.of(9)] }, [K.b1]);
    expect(verifyFirmware(other, { trust }).roles.length).toBe(1);
    expect(codeOf(() => verifyFirmware(other, { trust, components }))).toBe('TRUST_NO_POLICY');
  });

  test('a vendor id set only in a try-each branch still brings in its role', () => {
    const shared: SuitCommand[] = [
      { kind: 'override-parameters', params: { vendorId: VENDOR_A, classId: CLASS_RADIO, imageDigest: { alg: -16, bytes: new Uint8Array(32) }, imageSize: 4 } },
      {
        kind: 'try-each',
        allowNone: true,
        branches: [[{ kind: 'override-parameters', params: { vendorId: VENDOR_B } }, cond(CONDITION.vendorId)], [cond(CONDITION.vendorId)]],
      },
    ];
    const env = createSignedEnvelope({ version: 1, sequenceNumber: 5n, components: [RADIO], sharedSequence: shared, install: fetchImage }, [K.a1]);
    // The radio role alone would pass; the app role (vendor B) now governs too.
    expect(codeOf(() => verifyFirmware(env, { trust }))).toBe('KEY_NOT_AUTHORIZED');
    const both = createSignedEnvelope({ version: 1, sequenceNumber: 5n, components: [RADIO], sharedSequence: shared, install: fetchImage }, [K.a1, K.b1]);
    expect(verifyFirmware(both, { trust }).roles.map((r) => r.role.name).sort()).toEqual(['app', 'radio']);
  });

  test("a delta manifest's scratch component ['coapfw', 'delta'] needs no role of its own; the image it patches does", () => {
    const desc = { sequence: 7, vendorId: VENDOR_B, classId: CLASS_APP, uri: '/fw/new', digest: new Uint8Array(32).fill(3), size: 100, componentId: APP };
    const delta = { uri: '/fw/delta', digest: new Uint8Array(32).fill(4), size: 10, sourceDigest: new Uint8Array(32).fill(5), sourceSize: 90, frameSize: 1024 };
    const env = createEnvelope({ ...desc, delta }, [K.b1]);
    expect(verifyFirmware(env, { trust }).roles.map((r) => [r.componentIndex, r.role.name])).toEqual([[0, 'app']]);
    expect(codeOf(() => verifyFirmware(createEnvelope({ ...desc, delta }, [K.a1]), { trust }))).toBe('KEY_NOT_AUTHORIZED');
    const components = [{ componentId: APP, vendorId: VENDOR_B }];
    expect(verifyFirmware(env, { trust, components }).roles).toHaveLength(1);
  });

  test('threshold k of n and all-of', () => {
    const two: TrustState = { ...trust, anchors: [...trust.anchors, ...anchors('a2')], roles: [trust.roles[0]!, radioRole(['a1', 'a2'], 2), trust.roles[2]!] };
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1]), { trust: two }))).toBe('TRUST_THRESHOLD');
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a2]), { trust: two }))).toBe('TRUST_THRESHOLD');
    // A foreign signer does not make up the count, nor does the same key twice.
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1, K.b1]), { trust: two }))).toBe('TRUST_THRESHOLD');
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1, K.a1]), { trust: two }))).toBe('TRUST_THRESHOLD');
    expect(verifyFirmware(firmware('radio', [K.a2, K.a1]), { trust: two }).roles[0]!.counted.toSorted()).toEqual(['a1', 'a2']);
  });

  test('signatures by revoked keys count for nothing', () => {
    const revoked: TrustState = { ...trust, revocation: { sequence: 3, digest: new Uint8Array(32), revoked: [keyThumbprint(K.a1.publicKey)] } };
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1]), { trust: revoked }))).toBe('KEY_REVOKED');
    const spare: TrustState = { ...revoked, anchors: [...revoked.anchors, ...anchors('a2')], roles: [revoked.roles[0]!, radioRole(['a1', 'a2']), revoked.roles[2]!] };
    expect(verifyFirmware(firmware('radio', [K.a1, K.a2]), { trust: spare }).roles[0]).toMatchObject({ counted: ['a2'], revoked: ['a1'] });
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1]), { trust: spare }))).toBe('KEY_REVOKED');
  });

  test("verifyEnvelope's checks still apply: digest, anti-rollback, vendor and class", () => {
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1], 4), { trust, installedSequence: 4 }))).toBe('ROLLBACK');
    expect(codeOf(() => verifyFirmware(firmware('radio', [K.a1]), { trust, vendorId: VENDOR_B }))).toBe('VENDOR_MISMATCH');
    expect(verifyFirmware(firmware('radio', [K.a1], 5), { trust, installedSequence: 4, vendorId: VENDOR_A, classId: CLASS_RADIO }).sequenceNumber).toBe(5n);
    // A signature over the digest of another manifest.
    const { manifest } = encodeManifest({ version: 1, sequenceNumber: 1n, components: [RADIO], sharedSequence: [] });
    const other = encodeManifest({ version: 1, sequenceNumber: 2n, components: [RADIO], sharedSequence: [] }).manifest;
    const d = manifestDigest(other);
    const forged = assembleEnvelope({ digest: d, signatures: [signSign1(d, K.a1)], manifest });
    expect(codeOf(() => verifyFirmware(forged, { trust }))).toBe('DIGEST_MISMATCH');
  });

  test('a severed install the envelope does not carry leaves the touched components unknown', () => {
    const m = { version: 1, sequenceNumber: 5n, components: [RADIO], sharedSequence: [{ kind: 'override-parameters', params: { vendorId: VENDOR_A } }] as SuitCommand[], install: fetchImage };
    const { manifest } = encodeManifest(m, ['install']);
    const digest = manifestDigest(manifest);
    const env = assembleEnvelope({ digest, signatures: [signSign1(digest, K.a1)], manifest });
    expect(codeOf(() => verifyFirmware(env, { trust }))).toBe('SUIT_MALFORMED');
    expect(verifyFirmware(createSignedEnvelope(m, [K.a1], { sever: ['install'] }), { trust }).roles.length).toBe(1);
  });
});

describe('trustStateFromPolicy: the simple policy as a trust state', () => {
  const p1 = K.a1;
  const p2 = K.b1;
  const any: TrustPolicy = { anchors: [{ name: 'oem', publicKey: p1.publicKey }, { publicKey: p2.publicKey }] };
  const allOf: TrustPolicy = { anchors: [{ name: 'oem', publicKey: p1.publicKey }, { name: 'op', publicKey: p2.publicKey }], rule: { kind: 'allOf', names: ['oem', 'op'] } };

  test.each([
    ['any, first', any, [p1], true],
    ['any, second (unnamed)', any, [p2], true],
    ['any, stranger', any, [K.stranger], false],
    ['allOf, one', allOf, [p1], false],
    ['allOf, both', allOf, [p2, p1], true],
  ] as const)('%s: accepts exactly what verifyEnvelope accepts', (_n, policy, keys, ok) => {
    const env = firmware('radio', [...keys]);
    const simple = (): unknown => verifyEnvelope(env, { trust: policy });
    const state = (): unknown => verifyFirmware(env, { trust: trustStateFromPolicy(policy) });
    if (ok) {
      expect(simple).not.toThrow();
      expect(state).not.toThrow();
    } else {
      expect(simple).toThrow();
      expect(state).toThrow();
    }
  });

  test('names unnamed anchors without colliding, and has no trust role', () => {
    const s = trustStateFromPolicy({ anchors: [{ name: 'anchor-1', publicKey: p1.publicKey }, { publicKey: p2.publicKey }] });
    expect(s.anchors.map((a) => a.name)).toEqual(['anchor-1', '_anchor-1']);
    expect(s.roles).toEqual([{ name: 'firmware', scope: { kind: 'any-component' }, signers: ['anchor-1', '_anchor-1'], threshold: 1 }]);
  });
});
