import { describe, expect, test } from 'vitest';
import {
  checkImage,
  decodeEnvelope,
  parsePublicKey,
  planUpdate,
  verifyEnvelope,
  type TrustPolicy,
} from '../../src/suit/index.js';
import { isCoapfwError } from '../../src/errors.js';
import { WG_CLASS, WG_VENDOR, fixture, fixtureText, hex } from './helpers.js';

const wgKey = parsePublicKey(fixtureText('wg/public_key.pem'));
const edKey = parsePublicKey(fixtureText('eddsa/ed25519_public.hex'));
const wgTrust: TrustPolicy = { anchors: [{ name: 'wg', publicKey: wgKey }] };
const edTrust: TrustPolicy = { anchors: [{ name: 'test', publicKey: edKey }] };
const expected = JSON.parse(fixtureText('eddsa/expected.json')) as {
  image: { size: number; sha256: string };
  uri: string;
  'sequence-numbers': Record<string, number>;
};

const D1 = '00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210';
const D2 = '0123456789abcdeffedcba987654321000112233445566778899aabbccddeeff';

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (isCoapfwError(e)) return e.code;
    throw e;
  }
  return undefined;
}

describe('WG examples 0-5 (ES256, WG key)', () => {
  const cases = [
    { n: 0, components: [['00']], images: [] as { uri: string; digest: string; size: number }[] },
    { n: 1, components: [['00']], images: [{ uri: 'http://example.com/file.bin', digest: D1, size: 34768 }] },
    { n: 2, components: [['00']], images: [{ uri: 'http://example.com/very/long/path/to/file/file.bin', digest: D1, size: 34768 }] },
    { n: 3, components: [['00']], images: [{ uri: 'http://example.com/file1.bin', digest: D1, size: 34768 }] },
    { n: 4, components: [['00'], ['02'], ['01']], images: [{ uri: 'http://example.com/file.bin', digest: D1, size: -1 }] },
    {
      n: 5,
      components: [['00'], ['01']],
      images: [
        { uri: 'http://example.com/file1.bin', digest: D1, size: 34768 },
        { uri: 'http://example.com/file2.bin', digest: D2, size: 76834 },
      ],
    },
  ];
  for (const c of cases) {
    test(`example ${c.n} verifies, checks vendor and class, and plans its images`, () => {
      const v = verifyEnvelope(fixture(`wg/example${c.n}.signed.cbor`), { trust: wgTrust, vendorId: WG_VENDOR, classId: WG_CLASS });
      expect(v.sequenceNumber).toBe(BigInt(c.n));
      expect(v.manifest.components.map((id) => id.map(hex))).toEqual(c.components);
      const plan = planUpdate(v.manifest, { vendorId: WG_VENDOR, classId: WG_CLASS, componentSlot: 0 });
      expect(plan.conditionsChecked).toEqual(expect.arrayContaining(['vendor-identifier', 'class-identifier']));
      const fetches = plan.images.filter((i) => i.action === 'fetch');
      expect(fetches.map((i) => ({ uri: i.uri, digest: hex(i.digest!.bytes), size: i.size ?? -1 }))).toEqual(c.images);
      for (const f of fetches) expect(f.checks.map((k) => k.kind)).toEqual(['image-match']);
    });
  }

  test('unsigned examples decode but are rejected: no signature', () => {
    for (const n of [0, 1, 3, 4, 5]) {
      const bytes = fixture(`wg/example${n}.unsigned.cbor`);
      expect(decodeEnvelope(bytes).manifest.sequenceNumber).toBe(BigInt(n));
      expect(codeOf(() => verifyEnvelope(bytes, { trust: wgTrust }))).toBe('NO_SIGNATURE');
    }
  });

  test('example 2: severed install and text, digests in the manifest, bytes in the envelope', () => {
    const full = verifyEnvelope(fixture('wg/example2.signed.cbor'), { trust: wgTrust }).manifest;
    expect(Object.keys(full.severed).sort()).toEqual(['install', 'text']);
    expect(hex(full.severed.install!.bytes)).toBe('cfa90c5c58595e7f5119a72f803fd0370b3e6abbec6315cd38f63135281bc498');
    expect(full.install?.map((c) => c.kind)).toEqual(["override-parameters", "directive", "condition"]);
    expect(full.text?.[0]?.lang).toBe('en-US');
    expect(full.text?.[0]?.components[0]?.fields.get(3)).toBe('arm.com');
    expect(full.referenceUri).toBe('https://git.io/JJYoj');
    // Without the severed members: still verifies (same signature), but cannot be planned.
    const sev = verifyEnvelope(fixture('wg/example2.severed-signed.cbor'), { trust: wgTrust }).manifest;
    expect(sev.severed).toEqual(full.severed);
    expect(sev.install).toBeUndefined();
    expect(codeOf(() => planUpdate(sev, {}))).toBe('SUIT_MALFORMED');
    // Vendor and class still checked from the shared sequence.
    expect(verifyEnvelope(fixture('wg/example2.severed-signed.cbor'), { trust: wgTrust, vendorId: WG_VENDOR, classId: WG_CLASS }).sequenceNumber).toBe(2n);
    expect(codeOf(() => verifyEnvelope(fixture('wg/example2.severed-signed.cbor'), { trust: wgTrust, classId: WG_VENDOR }))).toBe('CLASS_MISMATCH');
  });

  test('example 2: a tampered severed member is rejected', () => {
    const bytes = fixture('wg/example2.signed.cbor');
    const at = Buffer.from(bytes).indexOf('very/long');
    expect(at).toBeGreaterThan(0);
    const bad = bytes.slice();
    bad[at] = 'V'.charCodeAt(0);
    expect(codeOf(() => verifyEnvelope(bad, { trust: wgTrust }))).toBe('DIGEST_MISMATCH');
  });

  test('example 3 (A/B via try-each): the slot picks file, digest and size', () => {
    const m = verifyEnvelope(fixture('wg/example3.signed.cbor'), { trust: wgTrust }).manifest;
    const a = planUpdate(m, { vendorId: WG_VENDOR, classId: WG_CLASS, componentSlot: 0 });
    const b = planUpdate(m, { vendorId: WG_VENDOR, classId: WG_CLASS, componentSlot: 1 });
    expect(a.images).toHaveLength(1);
    expect(b.images).toHaveLength(1);
    expect([a.images[0]!.slot, a.images[0]!.uri, hex(a.images[0]!.digest!.bytes), a.images[0]!.size]).toEqual([0, 'http://example.com/file1.bin', D1, 34768]);
    expect([b.images[0]!.slot, b.images[0]!.uri, hex(b.images[0]!.digest!.bytes), b.images[0]!.size]).toEqual([1, 'http://example.com/file2.bin', D2, 76834]);
    expect(hex(b.images[0]!.checks[0]!.digest!.bytes)).toBe(D2);
    expect(hex(b.validate[0]!.check.digest!.bytes)).toBe(D2);
    expect(codeOf(() => planUpdate(m, { componentSlot: 2 }))).toBe('CONDITION_FAILED');
  });

  test('example 5 (two images): one fetch per component, invoke component 0', () => {
    const m = verifyEnvelope(fixture('wg/example5.signed.cbor'), { trust: wgTrust }).manifest;
    const p = planUpdate(m, { vendorId: WG_VENDOR, classId: WG_CLASS });
    expect(p.images.map((i) => [i.componentIndex, hex(i.componentId[0]!), i.sequence, i.action])).toEqual([
      [0, '00', 'install', 'fetch'],
      [1, '01', 'install', 'fetch'],
    ]);
    expect(p.validate.map((v) => v.componentIndex)).toEqual([0, 1]);
    expect(p.invoke.map((v) => v.componentIndex)).toEqual([0]);
  });

  test('example 4: payload-fetch into the download component, copy on install and load', () => {
    const m = verifyEnvelope(fixture('wg/example4.signed.cbor'), { trust: wgTrust }).manifest;
    const p = planUpdate(m, {});
    expect(p.images.map((i) => [i.sequence, i.action, i.componentIndex, i.sourceComponent])).toEqual([
      ['payload-fetch', 'fetch', 1, undefined],
      ['install', 'copy', 0, 1],
      ['load', 'copy', 2, 0],
    ]);
    expect(p.images[2]!.size).toBe(76834);
    expect(p.invoke.map((i) => i.componentIndex)).toEqual([2]);
    expect(p.unchecked).toEqual(['vendor-identifier', 'class-identifier']);
  });
});

describe('Ed25519 vectors', () => {
  const firmware = fixture('eddsa/firmware.bin');
  for (const f of ['eddsa-alg-8.suit', 'ed25519-alg-19.suit'] as const) {
    test(`${f} verifies and its image passes image-match`, () => {
      const v = verifyEnvelope(fixture(`eddsa/${f}`), { trust: edTrust, installedSequence: 6, vendorId: WG_VENDOR, classId: WG_CLASS });
      expect(v.sequenceNumber).toBe(BigInt(expected['sequence-numbers'][f]!));
      const [img] = planUpdate(v.manifest, { vendorId: WG_VENDOR, classId: WG_CLASS }).images;
      expect([img!.uri, hex(img!.digest!.bytes), img!.size]).toEqual([expected.uri, expected.image.sha256, expected.image.size]);
      for (const c of img!.checks) checkImage(firmware, c);
    });
  }
  test('es256-alg-7-wgkey.suit verifies with the WG key, not with the Ed25519 key', () => {
    expect(verifyEnvelope(fixture('eddsa/es256-alg-7-wgkey.suit'), { trust: wgTrust }).sequenceNumber).toBe(7n);
    expect(codeOf(() => verifyEnvelope(fixture('eddsa/es256-alg-7-wgkey.suit'), { trust: edTrust }))).toBe('UNTRUSTED_KEY');
  });
  test('rollback-seq6.suit: valid, but rejected by a device that accepted 7', () => {
    expect(verifyEnvelope(fixture('eddsa/rollback-seq6.suit'), { trust: edTrust }).sequenceNumber).toBe(6n);
    expect(codeOf(() => verifyEnvelope(fixture('eddsa/rollback-seq6.suit'), { trust: edTrust, installedSequence: 7 }))).toBe('ROLLBACK');
    expect(codeOf(() => verifyEnvelope(fixture('eddsa/rollback-seq6.suit'), { trust: edTrust, installedSequence: 6n }))).toBe('ROLLBACK');
  });
  test('NEG-image-digest-wrong.suit: verifies, then fails image-match on the fetched firmware', () => {
    const v = verifyEnvelope(fixture('eddsa/NEG-image-digest-wrong.suit'), { trust: edTrust, installedSequence: 7 });
    const [img] = planUpdate(v.manifest, {}).images;
    expect(codeOf(() => checkImage(firmware, img!.checks[0]!))).toBe('DIGEST_MISMATCH');
  });
  test.each([
    ['NEG-bad-signature.suit', 'SIGNATURE_INVALID'],
    ['NEG-digest-mismatch.suit', 'DIGEST_MISMATCH'],
    ['NEG-no-auth-block.suit', 'NO_SIGNATURE'],
  ])('%s is rejected with %s', (f, code) => {
    expect(codeOf(() => verifyEnvelope(fixture(`eddsa/${f}`), { trust: edTrust }))).toBe(code);
  });
});
