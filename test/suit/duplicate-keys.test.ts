/**
 * Regression tests for the duplicate-key signature bypass: a map key repeated
 * under a different encoding (non-shortest integer head, float) must never let
 * the digest be checked over one member while the device acts on another.
 */
import { describe, expect, test } from 'vitest';
import {
  createSignedEnvelope,
  decodeEnvelope,
  manifestDigest,
  parsePrivateKey,
  planUpdate,
  signSign1,
  verifyEnvelope,
  type SuitManifest,
} from '../../src/suit/index.js';
import { bstr, encodeCbor, scanCbor } from '../../src/suit/cbor.js';
import { DEFAULT_SUIT_LIMITS } from '../../src/suit/limits.js';
import { fixture, fixtureText } from './helpers.js';

const key = parsePrivateKey(fixtureText('eddsa/ed25519_seed_TEST_ONLY.hex'));
const trust = { anchors: [{ publicKey: key.publicKey }] };
const malformed = expect.objectContaining({ code: 'SUIT_MALFORMED' });

/** The non-shortest and float encodings of a small unsigned key k (k < 24). */
function keyVariants(k: number): [string, number[]][] {
  const single = new DataView(new ArrayBuffer(4));
  single.setFloat32(0, k);
  return [
    ['1-byte head (18 xx)', [0x18, k]],
    ['2-byte head (19 00 xx)', [0x19, 0, k]],
    ['4-byte head (1a ..)', [0x1a, 0, 0, 0, k]],
    ['8-byte head (1b ..)', [0x1b, 0, 0, 0, 0, 0, 0, 0, k]],
    ['float32', [0xfa, ...new Uint8Array(single.buffer)]],
    ['float16', [0xf9, ...({ 3: [0x42, 0x00], 20: [0x4d, 0x00] } as Record<number, number[]>)[k]!]],
  ];
}

/** Append one raw (key, value) pair to the tagged envelope map `env` (d8 6b a<n> ...). */
function appendMember(env: Uint8Array, keyBytes: number[], value: Uint8Array): Uint8Array {
  expect([env[0], env[1]]).toEqual([0xd8, 0x6b]);
  const n = env[2]! & 0x1f;
  expect(env[2]! >> 5).toBe(5);
  return Uint8Array.from([0xd8, 0x6b, 0xa0 | (n + 1), ...env.subarray(3), ...keyBytes, ...value]);
}

/** The signed WG-style vector, and an evil manifest with sequence number 999. */
const signed = fixture('eddsa/ed25519-alg-19.suit');
const evilManifest = (): Uint8Array => {
  const m = decodeEnvelope(signed).manifestBytes;
  // Replace the encoded sequence number: find "02 <uint>" right after "01 01" at the start.
  expect([m[1], m[2], m[3]]).toEqual([0x01, 0x01, 0x02]);
  const seqHead = m[4]!;
  const seqLen = (seqHead & 0x1f) < 24 ? 1 : 1 + [1, 2, 4, 8][(seqHead & 0x1f) - 24]!;
  return Uint8Array.from([...m.subarray(0, 4), 0x19, 0x03, 0xe7, ...m.subarray(4 + seqLen)]);
};

describe('duplicate map keys by value (signature bypass)', () => {
  test('the untouched vector verifies (baseline)', () => {
    expect(verifyEnvelope(signed, { trust }).sequenceNumber).toBeGreaterThan(0n);
    // The evil manifest itself is well-formed: only its duplication is the attack.
    expect(() => scanCbor(evilManifest(), DEFAULT_SUIT_LIMITS, 'evil')).not.toThrow();
  });

  for (const [name, k] of keyVariants(3)) {
    test(`envelope: a second manifest under key 3 as ${name} is rejected`, () => {
      const evil = appendMember(signed, k, encodeCbor(bstr(evilManifest())));
      expect(() => verifyEnvelope(evil, { trust })).toThrow(malformed);
      expect(() => decodeEnvelope(evil)).toThrow(malformed);
    });
  }

  test('envelope: a second authentication wrapper (key 2 as 18 02) is rejected', () => {
    const d = decodeEnvelope(signed);
    const auth = encodeCbor([bstr(d.digestBytes)]);
    expect(() => decodeEnvelope(appendMember(signed, [0x18, 0x02], encodeCbor(bstr(auth))))).toThrow(malformed);
  });

  test('envelope: a float key alone is rejected, a non-shortest integer key alone is read by value', () => {
    const d = decodeEnvelope(signed);
    expect(() => decodeEnvelope(appendMember(signed, [0xf9, 0x4a, 0x00], encodeCbor(bstr(new Uint8Array(1)))))).toThrow(malformed);
    // Key 3 only as 19 00 03: one manifest, the signed one, still verifies.
    const authEnc = encodeCbor(bstr(encodeCbor([bstr(d.digestBytes), bstr(signSign1(d.digestBytes, key))])));
    const env = Uint8Array.from([0xd8, 0x6b, 0xa2, 0x02, ...authEnc, 0x19, 0x00, 0x03, ...d.manifestBstr]);
    expect(verifyEnvelope(env, { trust }).sequenceNumber).toBe(d.manifest.sequenceNumber);
  });

  test('severed member: a second install under key 20 as 18 14 is rejected', () => {
    const m: Omit<SuitManifest, 'severed'> = {
      version: 1, sequenceNumber: 5n, components: [[new Uint8Array(1)]], sharedSequence: [],
      install: [
        { kind: 'override-parameters', params: { uri: 'coap://good/fw', imageDigest: { alg: -16, bytes: new Uint8Array(32).fill(1) }, imageSize: 10 } },
        { kind: 'directive', code: 21, policy: 2 },
      ],
    };
    const env = createSignedEnvelope(m, [key], { sever: ['install'] });
    expect(planUpdate(verifyEnvelope(env, { trust }).manifest, {}).images[0]!.uri).toBe('coap://good/fw');
    const evilSeq = encodeCbor([20, new Map<number, unknown>([[21, 'coap://evil/fw'], [3, bstr(encodeCbor([-16, bstr(new Uint8Array(32).fill(9))]))], [14, 10]]), 21, 2]);
    for (const [, k] of keyVariants(20)) {
      expect(() => verifyEnvelope(appendMember(env, k, encodeCbor(bstr(evilSeq))), { trust })).toThrow(malformed);
    }
  });

  test('manifest map: a signed manifest with key 2 twice (02 and 19 00 02) is rejected', () => {
    const m = decodeEnvelope(signed).manifestBytes;
    const n = m[0]! & 0x1f;
    // Append a second sequence number 999 to the manifest map, then sign it properly.
    const dup = Uint8Array.from([0xa0 | (n + 1), ...m.subarray(1), 0x19, 0x00, 0x02, 0x19, 0x03, 0xe7]);
    const digest = manifestDigest(dup);
    const auth = encodeCbor([bstr(digest), bstr(signSign1(digest, key))]);
    const env = Uint8Array.from([0xd8, 0x6b, 0xa2, 0x02, ...encodeCbor(bstr(auth)), 0x03, ...encodeCbor(bstr(dup))]);
    expect(() => verifyEnvelope(env, { trust })).toThrow(malformed);
  });

  test('the manifest acted upon is decoded from the very bytes the digest covers', () => {
    const d = decodeEnvelope(signed);
    const off = d.manifestBstr.byteOffset - signed.byteOffset;
    expect(d.manifestBstr.buffer).toBe(signed.buffer);
    expect(d.manifestBytes.buffer).toBe(signed.buffer);
    expect(d.manifestBytes.byteOffset + d.manifestBytes.length).toBe(signed.byteOffset + off + d.manifestBstr.length);
  });
});

describe('scanCbor map keys', () => {
  const scan = (hexStr: string): void => scanCbor(Uint8Array.from(Buffer.from(hexStr, 'hex')), DEFAULT_SUIT_LIMITS, 'test');
  test('keys equal in value are duplicates whatever their encoding', () => {
    for (const h of ['a2030103 02', 'a203011803 02', 'a20301190003 02', 'a203011a00000003 02', 'a203011b0000000000000003 02', 'a2200120 02', 'a220013800 02']) {
      expect(() => scan(h.replace(' ', ''))).toThrow(malformed);
    }
    // Large keys compare exactly (not rounded to 2^53).
    expect(() => scan('a21b001fffffffffffff01 1b0020000000000000 02'.replace(/ /g, ''))).not.toThrow();
    expect(() => scan('a21b002000000000000001 1b0020000000000001 02'.replace(/ /g, ''))).not.toThrow();
  });
  test('text keys by content; invalid UTF-8 is rejected', () => {
    expect(() => scan('a2616101616102')).toThrow(malformed);
    expect(() => scan('a2616101616202')).not.toThrow();
    expect(() => scan('a161ff01')).toThrow(malformed);
  });
  test('array keys (SUIT text component ids) by value; floats, simple values, tags, maps are not keys', () => {
    expect(() => scan('a281410001814100 02'.replace(' ', ''))).toThrow(malformed);
    expect(() => scan('a2814100018158010002')).toThrow(malformed);
    expect(() => scan('a281410001814101 02'.replace(' ', ''))).not.toThrow();
    for (const h of ['a1f94200 01', 'a1f5 01', 'a1f6 01', 'a1d81203 01', 'a1a0 01', 'a181f5 01']) {
      expect(() => scan(h.replace(' ', ''))).toThrow(malformed);
    }
  });
});
