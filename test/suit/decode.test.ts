import { describe, expect, test } from 'vitest';
import {
  assembleEnvelope,
  decodeEnvelope,
  manifestDigest,
  parsePrivateKey,
  planUpdate,
  signSign1,
  verifyEnvelope,
  createSignedEnvelope,
  type SuitCommand,
} from '../../src/suit/index.js';
import { bstr, encodeCbor, tagged } from '../../src/suit/cbor.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { WG_CLASS, WG_VENDOR, fixtureText, hex } from './helpers.js';

const key = parsePrivateKey(fixtureText('eddsa/ed25519_seed_TEST_ONLY.hex'));
const trust = { anchors: [{ publicKey: key.publicKey }] };

/** Sign hand-built manifest bytes into an envelope, with extra envelope members. */
function envelopeOf(manifest: Uint8Array, extra: [unknown, unknown][] = []): Uint8Array {
  const digest = manifestDigest(manifest);
  const auth = encodeCbor([bstr(digest), bstr(signSign1(digest, key))]);
  return encodeCbor(tagged(107, new Map<unknown, unknown>([[2, bstr(auth)], [3, bstr(manifest)], ...extra])));
}

const seq = (...items: unknown[]): Buffer => bstr(encodeCbor(items));
const params = new Map<number, unknown>([[1, bstr(WG_VENDOR)], [2, bstr(WG_CLASS)], [21, 'coap://x/fw'], [99, 'unknown param']]);

describe('decoding', () => {
  test('unknown keys in envelope, manifest, common and parameters are skipped', () => {
    const common = new Map<number, unknown>([[2, [[bstr(new Uint8Array([0]))]]], [4, seq(20, params, 1, 15, 2, 15)], [77, 'x']]);
    const manifest = encodeCbor(new Map<number, unknown>([[1, 1], [2, 3], [3, bstr(encodeCbor(common))], [20, seq(21, 2)], [99, [1, 2, 3]]]));
    const env = envelopeOf(manifest, [[42, 'future member'], ['#payload', bstr(new Uint8Array([1, 2]))]]);
    const v = verifyEnvelope(env, { trust, vendorId: WG_VENDOR, classId: WG_CLASS });
    expect(v.sequenceNumber).toBe(3n);
    expect(hex(v.envelope.integratedPayloads.get('#payload')!)).toBe('0102');
    const ov = v.manifest.sharedSequence[0] as Extract<SuitCommand, { kind: 'override-parameters' }>;
    expect(ov.params.other?.get(99)).toBe('unknown param');
    expect(planUpdate(v.manifest, { vendorId: WG_VENDOR }).images[0]!.uri).toBe('coap://x/fw');
  });

  test('wrong types are SUIT_MALFORMED with a label', () => {
    const bad = encodeCbor(new Map<number, unknown>([[1, 1], [2, 'seven'], [3, bstr(encodeCbor(new Map()))]]));
    expect(() => decodeEnvelope(envelopeOf(bad))).toThrow(expect.objectContaining({ code: 'SUIT_MALFORMED', message: expect.stringMatching(/sequence number/) }));
    const v2 = encodeCbor(new Map<number, unknown>([[1, 2], [2, 1], [3, bstr(encodeCbor(new Map()))]]));
    expect(() => decodeEnvelope(envelopeOf(v2))).toThrow(expect.objectContaining({ code: 'SUIT_UNSUPPORTED' }));
  });

  test('COSE_Sign (multi-signer structure) is not supported: counted, ignored, alone rejected', () => {
    const manifest = encodeCbor(new Map<number, unknown>([[1, 1], [2, 1], [3, bstr(encodeCbor(new Map()))]]));
    const digest = manifestDigest(manifest);
    const sign = encodeCbor(tagged(98, [bstr(new Uint8Array()), new Map(), null, []]));
    const env = assembleEnvelope({ digest, signatures: [sign], manifest });
    expect(decodeEnvelope(env).otherAuthBlocks).toBe(1);
    expect(() => verifyEnvelope(env, { trust })).toThrow(expect.objectContaining({ code: 'SUIT_UNSUPPORTED' }));
    // Next to a COSE_Sign1 by a trusted key, it is ignored.
    const both = assembleEnvelope({ digest, signatures: [sign, signSign1(digest, key)], manifest });
    expect(verifyEnvelope(both, { trust }).signedBy).toEqual([0]);
  });

  test('commands an updater cannot run are SUIT_UNSUPPORTED at planning, not at decoding', () => {
    const mk = (install: SuitCommand[]): Uint8Array =>
      createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: [[new Uint8Array(1)]], sharedSequence: [], install }, [key]);
    const swap = verifyEnvelope(mk([{ kind: 'directive', code: 31, policy: 0 }]), { trust }).manifest;
    expect(() => planUpdate(swap, {})).toThrow(expect.objectContaining({ code: 'SUIT_UNSUPPORTED', message: expect.stringMatching(/swap/) }));
    const custom = verifyEnvelope(mk([{ kind: 'unknown', code: -257, arg: 'x' }]), { trust }).manifest;
    expect(custom.install).toEqual([{ kind: 'unknown', code: -257, arg: 'x' }]);
    expect(() => planUpdate(custom, {})).toThrow(expect.objectContaining({ code: 'SUIT_UNSUPPORTED' }));
  });

  test('a set-component-index beyond the components is malformed', () => {
    const env = createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: [[new Uint8Array(1)]], sharedSequence: [], install: [{ kind: 'set-component-index', index: 3 }] }, [key]);
    expect(() => planUpdate(decodeEnvelope(env).manifest, {})).toThrow(expect.objectContaining({ code: 'SUIT_MALFORMED' }));
  });

  test('try-each with a trailing nil may match nothing', () => {
    const fail: SuitCommand = { kind: 'condition', code: 14, policy: 0 };
    const install: SuitCommand[] = [{ kind: 'try-each', branches: [[fail], [fail]], allowNone: true }];
    const env = createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: [[new Uint8Array(1)]], sharedSequence: [], install }, [key]);
    expect(planUpdate(decodeEnvelope(env).manifest, {}).images).toEqual([]);
    const strict = createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: [[new Uint8Array(1)]], sharedSequence: [], install: [{ kind: 'try-each', branches: [[fail], [fail]], allowNone: false }] }, [key]);
    expect(() => planUpdate(decodeEnvelope(strict).manifest, {})).toThrow(expect.objectContaining({ code: 'CONDITION_FAILED' }));
  });
});

describe('digests cover members as encoded', () => {
  test('a manifest bstr with a non-shortest length header verifies against its own bytes', () => {
    const manifest = encodeCbor(new Map<number, unknown>([[1, 1], [2, 5], [3, bstr(encodeCbor(new Map([[2, [[bstr(new Uint8Array(1))]]]])))]]));
    const n = manifest.length;
    const longHeader = Uint8Array.from([0x5a, (n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255, ...manifest]);
    const digest = encodeCbor([-16, bstr(sha256(longHeader))]);
    const auth = encodeCbor([bstr(digest), bstr(signSign1(digest, key))]);
    const env = Uint8Array.from([0xd8, 0x6b, 0xa2, 0x02, ...encodeCbor(bstr(auth)), 0x03, ...longHeader]);
    expect(verifyEnvelope(env, { trust }).sequenceNumber).toBe(5n);
    // The digest of the shortest encoding does not match these bytes.
    const digest2 = manifestDigest(manifest);
    const auth2 = encodeCbor([bstr(digest2), bstr(signSign1(digest2, key))]);
    const env2 = Uint8Array.from([0xd8, 0x6b, 0xa2, 0x02, ...encodeCbor(bstr(auth2)), 0x03, ...longHeader]);
    expect(() => verifyEnvelope(env2, { trust })).toThrow(expect.objectContaining({ code: 'DIGEST_MISMATCH' }));
  });
});
