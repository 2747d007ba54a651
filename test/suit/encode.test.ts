import { describe, expect, test } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import {
  addSignatures,
  compileManifest,
  createEnvelope,
  createSignedEnvelope,
  decodeEnvelope,
  encodeManifest,
  parsePrivateKey,
  parsePublicKey,
  planUpdate,
  privateKeyFromSecret,
  verifyEnvelope,
  type JsonManifest,
  type SuitManifest,
} from '../../src/suit/index.js';
import { WG_CLASS, WG_VENDOR, fixture, fixtureText, hex, unhex } from './helpers.js';

const edPriv = parsePrivateKey(fixtureText('eddsa/ed25519_seed_TEST_ONLY.hex'));
const wgPriv = parsePrivateKey(fixtureText('wg/private_key.pem'));
const json = (n: number): JsonManifest => JSON.parse(fixtureText(`wg/example${n}.json`)) as JsonManifest;

function withoutSevered(m: SuitManifest): Omit<SuitManifest, 'severed'> {
  const { severed: _s, ...rest } = m;
  return rest;
}

describe('JSON -> manifest, as the WG tool compiles it', () => {
  test.each([0, 1, 3, 4, 5])('example %i: same manifest bytes as the WG envelope', (n) => {
    const { manifest, sever } = compileManifest(json(n));
    expect(hex(encodeManifest(manifest, sever).manifest)).toBe(hex(decodeEnvelope(fixture(`wg/example${n}.signed.cbor`)).manifestBytes));
  });

  test('example 1 unsigned: identical envelope bytes (digest-only wrapper)', () => {
    const { manifest } = compileManifest(json(1));
    expect(hex(createSignedEnvelope(manifest, []))).toBe(hex(fixture('wg/example1.unsigned.cbor')));
  });

  test('example 1 signed by the WG key verifies with the WG public key', () => {
    const { manifest } = compileManifest(json(1));
    const env = createSignedEnvelope(manifest, [wgPriv]);
    const wgPub = parsePublicKey(fixtureText('wg/public_key.pem'));
    const v = verifyEnvelope(env, { trust: { anchors: [{ publicKey: wgPub }] }, vendorId: WG_VENDOR, classId: WG_CLASS });
    expect(v.envelope.signatures[0]!.alg).toBe(-7);
    expect(hex(v.envelope.manifestBytes)).toBe(hex(decodeEnvelope(fixture('wg/example1.signed.cbor')).manifestBytes));
  });

  test('example 2: severed members, same commands and severed install digest as the WG', () => {
    const { manifest, sever } = compileManifest(json(2));
    expect(sever).toContain('install');
    const env = createSignedEnvelope(manifest, [edPriv], { sever });
    const ours = verifyEnvelope(env, { trust: { anchors: [{ publicKey: edPriv.publicKey }] } }).manifest;
    const theirs = decodeEnvelope(fixture('wg/example2.signed.cbor')).manifest;
    expect(ours.install).toEqual(theirs.install);
    expect(ours.sharedSequence).toEqual(theirs.sharedSequence);
    expect(ours.severed.install).toEqual(theirs.severed.install);
    expect(ours.text?.[0]?.fields).toEqual(theirs.text?.[0]?.fields);
  });
});

describe('round trip: created envelopes decode to the same meaning', () => {
  test.each([0, 1, 2, 3, 4, 5])('example %i signed with Ed25519 -19', (n) => {
    const { manifest, sever } = compileManifest(json(n));
    const env = createSignedEnvelope(manifest, [edPriv], { sever });
    const v = verifyEnvelope(env, { trust: { anchors: [{ publicKey: edPriv.publicKey }] } });
    expect(v.envelope.signatures.map((s) => s.alg)).toEqual([-19]);
    expect(withoutSevered(v.manifest)).toEqual(withoutSevered({ ...manifest, severed: {} }));
    // Re-encoding the decoded manifest gives the same bytes.
    expect(hex(encodeManifest(v.manifest, sever).manifest)).toBe(hex(v.envelope.manifestBytes));
  });

  test('untagged envelopes decode too', () => {
    const { manifest } = compileManifest(json(1));
    const env = createSignedEnvelope(manifest, [edPriv], { tagged: false });
    expect(env[0]).toBe(0xa2);
    expect(verifyEnvelope(env, { trust: { anchors: [{ publicKey: edPriv.publicKey }] } }).envelope.tagged).toBe(false);
  });

  test('integrated payloads travel under text keys', () => {
    const { manifest } = compileManifest(json(1));
    const env = createSignedEnvelope(manifest, [edPriv], { integratedPayloads: new Map([['#fw', unhex('deadbeef')]]) });
    expect(hex(decodeEnvelope(env).integratedPayloads.get('#fw')!)).toBe('deadbeef');
  });
});

describe('createEnvelope (single image, our server)', () => {
  const digest = unhex('243fa4952dccf8667f6008cca401cb010cf748d434061f4f411775fd69a11513');
  const base = { sequence: 8, vendorId: WG_VENDOR, classId: WG_CLASS, uri: `coap://[::1]/fw/sha256/${hex(digest)}`, digest, size: 5000 };

  test('verifies and plans to one fetch with digest, size and URI', () => {
    const env = createEnvelope(base, [edPriv]);
    const v = verifyEnvelope(env, { trust: { anchors: [{ publicKey: edPriv.publicKey }] }, installedSequence: 7, vendorId: WG_VENDOR, classId: WG_CLASS });
    const plan = planUpdate(v.manifest, { vendorId: WG_VENDOR, classId: WG_CLASS });
    expect(plan.images).toHaveLength(1);
    const img = plan.images[0]!;
    expect([img.uri, hex(img.digest!.bytes), img.size, img.slot]).toEqual([base.uri, hex(digest), 5000, undefined]);
    expect(plan.invoke).toEqual([]);
  });

  test('with a slot and a sequence above 2^53', () => {
    const seq = (1n << 60n) + 3n;
    const env = createEnvelope({ ...base, sequence: seq, slot: 1, componentId: [unhex('01'), unhex('02')], invoke: true }, [edPriv]);
    const v = verifyEnvelope(env, { trust: { anchors: [{ publicKey: edPriv.publicKey }] }, installedSequence: seq - 1n });
    expect(v.sequenceNumber).toBe(seq);
    expect(planUpdate(v.manifest, { componentSlot: 1 }).images[0]!.slot).toBe(1);
    expect(() => planUpdate(v.manifest, { componentSlot: 0 })).toThrow(/component-slot/);
    expect(planUpdate(v.manifest, { componentSlot: 1 }).invoke).toHaveLength(1);
  });

  test('bad input is an INVALID_ARGUMENT', () => {
    expect(() => createEnvelope({ ...base, size: -1 }, [edPriv])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => createEnvelope({ ...base, vendorId: new Uint8Array(3) }, [edPriv])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => createEnvelope({ ...base, sequence: 2 ** 60 }, [edPriv])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('multi-party signing', () => {
  test('addSignatures appends a countersignature and keeps the manifest bytes', () => {
    const oem = edPriv;
    const { privateKey: opPem } = generateKeyPairSync('ed25519');
    const operator = parsePrivateKey(opPem.export({ type: 'pkcs8', format: 'pem' }) as string);
    const { manifest } = compileManifest(json(1));
    const one = createSignedEnvelope(manifest, [oem]);
    const two = addSignatures(one, [operator]);
    const d1 = decodeEnvelope(one);
    const d2 = decodeEnvelope(two);
    expect(hex(d2.manifestBytes)).toBe(hex(d1.manifestBytes));
    expect(d2.signatures).toHaveLength(2);
    const trust = {
      anchors: [{ name: 'oem', publicKey: oem.publicKey }, { name: 'operator', publicKey: operator.publicKey }],
      rule: { kind: 'allOf' as const, names: ['oem', 'operator'] },
    };
    expect(verifyEnvelope(two, { trust }).signedBy.toSorted()).toEqual([0, 1]);
    expect(() => verifyEnvelope(one, { trust })).toThrow(expect.objectContaining({ code: 'NO_SIGNATURE' }));
  });

  test('a P-256 key signs with ES256 and can be combined with Ed25519', () => {
    const { manifest } = compileManifest(json(5));
    const env = createSignedEnvelope(manifest, [edPriv, privateKeyFromSecret('p256', wgPriv.secret)]);
    const d = decodeEnvelope(env);
    expect(d.signatures.map((s) => s.alg)).toEqual([-19, -7]);
  });
});
