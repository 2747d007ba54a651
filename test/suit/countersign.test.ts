/**
 * addSignatures (operator countersigning): it must sign only the digest of
 * the manifest in the same envelope, and keep every other member byte for byte.
 */
import { describe, expect, test } from 'vitest';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  addSignatures,
  createSignedEnvelope,
  decodeEnvelope,
  encodeManifest,
  manifestDigest,
  privateKeyFromSecret,
  signSign1,
  verifyEnvelope,
  type ManifestInput,
} from '../../src/suit/index.js';
import { bstr, encodeCbor, tagged } from '../../src/suit/cbor.js';
import { hex } from './helpers.js';

const oem = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(1));
const op = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(2));
const both = {
  anchors: [{ name: 'oem', publicKey: oem.publicKey }, { name: 'op', publicKey: op.publicKey }],
  rule: { kind: 'allOf' as const, names: ['oem', 'op'] },
};
const oemOnly = { anchors: [{ name: 'oem', publicKey: oem.publicKey }] };
const mk = (uri: string): ManifestInput => ({
  version: 1, sequenceNumber: 9n, components: [[new Uint8Array(1)]], sharedSequence: [],
  install: [{ kind: 'override-parameters', params: { uri } }, { kind: 'directive', code: 21, policy: 2 }],
});

/** A bstr with a 4-byte length head (non-shortest), as a producer may write it. */
const longBstr = (b: Uint8Array): Uint8Array => Uint8Array.from([0x5a, 0, 0, (b.length >> 8) & 255, b.length & 255, ...b]);

describe('addSignatures', () => {
  test('refuses an authentication digest that is not the digest of the carried manifest', () => {
    const evil = decodeEnvelope(createSignedEnvelope(mk('coap://evil'), [oem]));
    const benign = decodeEnvelope(createSignedEnvelope(mk('coap://good'), [oem]));
    const evilDigest = manifestDigest(evil.manifestBytes);
    const trick = encodeCbor(tagged(107, new Map([
      [2, bstr(encodeCbor([bstr(evilDigest), bstr(signSign1(evilDigest, oem))]))],
      [3, bstr(benign.manifestBytes)],
    ])));
    expect(() => addSignatures(trick, [op])).toThrow(expect.objectContaining({ code: 'DIGEST_MISMATCH' }));
  });

  test('countersigns an envelope whose members use non-shortest length heads, keeping them byte for byte', () => {
    const { manifest, severed } = encodeManifest(mk('coap://good'), ['install']);
    const longManifest = longBstr(manifest);
    const digest = encodeCbor([-16, bstr(sha256(longManifest))]);
    const authMember = Uint8Array.from([0x02, ...encodeCbor(bstr(encodeCbor([bstr(digest), bstr(signSign1(digest, oem))])))]);
    const rest = Uint8Array.from([
      0x03, ...longManifest,
      0x14, ...encodeCbor(bstr(severed.get(20)!)),
      0x63, 0x23, 0x66, 0x77, ...longBstr(new Uint8Array([1, 2, 3])), // "#fw": integrated payload
    ]);
    const env = Uint8Array.from([0xd8, 0x6b, 0xa4, ...authMember, ...rest]);
    expect(verifyEnvelope(env, { trust: oemOnly }).signedBy).toEqual([0]);
    const out = addSignatures(env, [op]);
    const v = verifyEnvelope(out, { trust: both });
    expect([...v.signedBy].sort()).toEqual([0, 1]);
    expect(hex(v.envelope.manifestBstr)).toBe(hex(longManifest));
    expect(v.manifest.install).toBeDefined();
    expect(v.envelope.integratedPayloads.get('#fw')).toEqual(new Uint8Array([1, 2, 3]));
    // Head and every member after the authentication wrapper are unchanged.
    expect(hex(out.subarray(0, 3))).toBe(hex(env.subarray(0, 3)));
    expect(hex(out.subarray(out.length - rest.length))).toBe(hex(rest));
  });

  test('refuses to go beyond the signature limit', () => {
    const env = createSignedEnvelope(mk('coap://good'), [oem, oem, oem, oem, oem, oem, oem, oem]);
    expect(() => addSignatures(env, [op])).toThrow(expect.objectContaining({ code: 'SUIT_LIMIT' }));
  });
});

