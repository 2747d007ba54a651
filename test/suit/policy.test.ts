import { describe, expect, test } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import {
  compileManifest,
  createEnvelope,
  createSignedEnvelope,
  parsePrivateKey,
  parsePublicKey,
  planUpdate,
  verifyEnvelope,
  type JsonManifest,
  type SuitPrivateKey,
  type TrustPolicy,
} from '../../src/suit/index.js';
import { WG_CLASS, WG_VENDOR, fixture, fixtureText, unhex } from './helpers.js';

function newKey(): SuitPrivateKey {
  const { privateKey } = generateKeyPairSync('ed25519');
  return parsePrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' }) as string);
}
const oem = newKey();
const operator = newKey();
const stranger = newKey();
const digest = new Uint8Array(32).fill(7);
const desc = { sequence: 10, vendorId: WG_VENDOR, classId: WG_CLASS, uri: 'coap://h/fw/sha256/07', digest, size: 100 };
const anyOem: TrustPolicy = { anchors: [{ name: 'oem', publicKey: oem.publicKey }] };
const both: TrustPolicy = {
  anchors: [{ name: 'oem', publicKey: oem.publicKey }, { name: 'operator', publicKey: operator.publicKey }],
  rule: { kind: 'allOf', names: ['oem', 'operator'] },
};

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code ?? 'NOT_TYPED';
  }
}

describe('trust policy', () => {
  test('a signature by an unknown key is rejected', () => {
    expect(code(() => verifyEnvelope(createEnvelope(desc, [stranger]), { trust: anyOem }))).toBe('SIGNATURE_INVALID');
  });
  test('an unknown key plus a trusted one passes with rule any', () => {
    expect(verifyEnvelope(createEnvelope(desc, [stranger, oem]), { trust: anyOem }).signedBy).toEqual([0]);
  });
  test('one of two required signatures missing is rejected, both present passes', () => {
    expect(code(() => verifyEnvelope(createEnvelope(desc, [oem]), { trust: both }))).toBe('NO_SIGNATURE');
    expect(code(() => verifyEnvelope(createEnvelope(desc, [operator, stranger]), { trust: both }))).toBe('NO_SIGNATURE');
    expect(verifyEnvelope(createEnvelope(desc, [operator, oem]), { trust: both }).signedBy.toSorted()).toEqual([0, 1]);
  });
  test('key ids select anchors: a signature whose kid names no anchor is untrusted', () => {
    const kidA = unhex('0a');
    const trust: TrustPolicy = { anchors: [{ name: 'oem', publicKey: oem.publicKey, keyId: kidA }] };
    const ok = createSignedEnvelope(compileManifest(JSON.parse(fixtureText('wg/example1.json')) as JsonManifest).manifest, [oem], { signOptions: [{ kid: kidA }] });
    expect(verifyEnvelope(ok, { trust }).envelope.signatures[0]!.kid).toEqual(kidA);
    const other = createSignedEnvelope(compileManifest(JSON.parse(fixtureText('wg/example1.json')) as JsonManifest).manifest, [oem], { signOptions: [{ kid: unhex('0b') }] });
    expect(code(() => verifyEnvelope(other, { trust }))).toBe('UNTRUSTED_KEY');
  });
  test('an ES256 signature when only Ed25519 keys are trusted is an untrusted key', () => {
    const wg = parsePrivateKey(fixtureText('wg/private_key.pem'));
    expect(code(() => verifyEnvelope(createEnvelope(desc, [wg]), { trust: anyOem }))).toBe('UNTRUSTED_KEY');
    const wgPub = parsePublicKey(fixtureText('wg/public_key.pem'));
    expect(verifyEnvelope(createEnvelope(desc, [wg]), { trust: { anchors: [{ publicKey: wgPub }] } }).sequenceNumber).toBe(10n);
  });
  test('an empty or inconsistent policy is an INVALID_ARGUMENT', () => {
    const env = createEnvelope(desc, [oem]);
    expect(code(() => verifyEnvelope(env, { trust: { anchors: [] } }))).toBe('INVALID_ARGUMENT');
    expect(code(() => verifyEnvelope(env, { trust: { anchors: anyOem.anchors, rule: { kind: 'allOf', names: ['nobody'] } } }))).toBe('INVALID_ARGUMENT');
  });
  test('allOf cannot degrade to any-one: duplicate anchor names and duplicate rule names are rejected', () => {
    const env = createEnvelope(desc, [oem]);
    // Two parties both called 'key.pub' (as a CLI naming by base name did): only the OEM signed.
    const sameName: TrustPolicy = {
      anchors: [{ name: 'key.pub', publicKey: oem.publicKey }, { name: 'key.pub', publicKey: operator.publicKey }],
      rule: { kind: 'allOf', names: ['key.pub', 'key.pub'] },
    };
    expect(code(() => verifyEnvelope(env, { trust: sameName }))).toBe('INVALID_ARGUMENT');
    expect(code(() => verifyEnvelope(env, { trust: { anchors: sameName.anchors } }))).toBe('INVALID_ARGUMENT');
    const twice: TrustPolicy = { anchors: both.anchors, rule: { kind: 'allOf', names: ['oem', 'oem'] } };
    expect(code(() => verifyEnvelope(env, { trust: twice }))).toBe('INVALID_ARGUMENT');
    // Distinct names still work, unnamed anchors may repeat.
    expect(code(() => verifyEnvelope(env, { trust: both }))).toBe('NO_SIGNATURE');
    expect(verifyEnvelope(env, { trust: { anchors: [{ publicKey: operator.publicKey }, { publicKey: oem.publicKey }] } }).signedBy).toEqual([1]);
  });
});

describe('device policy', () => {
  const env = createEnvelope(desc, [oem]);
  test('rollback: equal or lower sequence numbers are rejected, higher accepted', () => {
    expect(code(() => verifyEnvelope(env, { trust: anyOem, installedSequence: 10 }))).toBe('ROLLBACK');
    expect(code(() => verifyEnvelope(env, { trust: anyOem, installedSequence: 11n }))).toBe('ROLLBACK');
    expect(verifyEnvelope(env, { trust: anyOem, installedSequence: 9 }).sequenceNumber).toBe(10n);
  });
  test('installedSequence as a number above 2^53 is refused clearly', () => {
    expect(code(() => verifyEnvelope(env, { trust: anyOem, installedSequence: 2 ** 60 }))).toBe('INVALID_ARGUMENT');
  });
  test('wrong vendor and wrong class are rejected', () => {
    const other = unhex('00000000000000000000000000000001');
    expect(code(() => verifyEnvelope(env, { trust: anyOem, vendorId: other, classId: WG_CLASS }))).toBe('VENDOR_MISMATCH');
    expect(code(() => verifyEnvelope(env, { trust: anyOem, vendorId: WG_VENDOR, classId: other }))).toBe('CLASS_MISMATCH');
    expect(code(() => planUpdate(verifyEnvelope(env, { trust: anyOem }).manifest, { classId: other }))).toBe('CLASS_MISMATCH');
  });
  test('a manifest that does not check the class is refused when the device gives one', () => {
    const json = JSON.parse(fixtureText('wg/example1.json')) as JsonManifest;
    delete json.components[0]!['class-id'];
    const noClass = createSignedEnvelope(compileManifest(json).manifest, [oem]);
    expect(code(() => verifyEnvelope(noClass, { trust: anyOem, classId: WG_CLASS }))).toBe('CLASS_MISMATCH');
    expect(verifyEnvelope(noClass, { trust: anyOem, classId: WG_CLASS, requireIdentityConditions: false }).sequenceNumber).toBe(1n);
  });
});

describe('policy: keys and COSE headers', () => {
  test('one key under two names cannot stand for two parties of allOf', () => {
    const env = createEnvelope(desc, [oem]);
    const twice: TrustPolicy = {
      anchors: [{ name: 'oem', publicKey: oem.publicKey }, { name: 'operator', publicKey: oem.publicKey }],
      rule: { kind: 'allOf', names: ['oem', 'operator'] },
    };
    expect(code(() => verifyEnvelope(env, { trust: twice, vendorId: WG_VENDOR, classId: WG_CLASS }))).toBe('INVALID_ARGUMENT');
  });

  test('a COSE_Sign1 whose protected header has crit (RFC 9052 §3.1) is refused, even when correctly signed', async () => {
    const { ed25519 } = await import('@noble/curves/ed25519.js');
    const C = await import('../../src/suit/cbor.js');
    const dir = 'eddsa/';
    const env = fixture(`${dir}ed25519-alg-19.suit`);
    const seed = unhex(fixtureText(`${dir}ed25519_seed_TEST_ONLY.hex`).trim());
    const trust: TrustPolicy = { anchors: [{ name: 'oem', publicKey: parsePublicKey(fixtureText(`${dir}ed25519_public.pem`)) }] };
    const L = { maxDepth: 16, maxArrayLength: 256, maxItems: 16384 };
    const [aw, mf] = C.scanMap(env, L, 'envelope').entries;
    const auth = C.decodeCbor(C.bstrContent(aw!.valueBytes, 'auth'), L, 'auth') as Uint8Array[];
    const digestBytes = auth[0]!;
    const resign = (protectedMap: Map<number, unknown>): Uint8Array => {
      const prot = C.encodeCbor(protectedMap);
      const toSign = C.encodeCbor(['Signature1', C.bstr(prot), C.bstr(new Uint8Array()), C.bstr(digestBytes)]);
      const s1 = C.encodeCbor(C.tagged(18, [C.bstr(prot), new Map(), null, C.bstr(ed25519.sign(toSign, seed))]));
      return Uint8Array.from(Buffer.concat([Buffer.from('d86ba2', 'hex'), aw!.keyBytes, C.bstrWrap(C.encodeCbor([C.bstr(digestBytes), C.bstr(s1)])), mf!.keyBytes, mf!.valueBytes]));
    };
    // The re-signing itself is sound: without crit the envelope verifies.
    expect(verifyEnvelope(resign(new Map([[1, -19]])), { trust }).signedBy).toEqual([0]);
    expect(code(() => verifyEnvelope(resign(new Map<number, unknown>([[1, -19], [2, [99]], [99, 1]])), { trust }))).toBe('SUIT_UNSUPPORTED');
  });
});
