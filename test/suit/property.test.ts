import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import {
  createSignedEnvelope,
  decodeEnvelope,
  encodeManifest,
  parsePrivateKey,
  verifyEnvelope,
  type SeverableMember,
  type SuitCommand,
  type SuitManifest,
  type SuitParameters,
} from '../../src/suit/index.js';
import { fixtureText } from './helpers.js';

const key = parsePrivateKey(fixtureText('eddsa/ed25519_seed_TEST_ONLY.hex'));
const trust = { anchors: [{ publicKey: key.publicKey }] };

const bytes = (min: number, max: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: min, maxLength: max });
const params: fc.Arbitrary<SuitParameters> = fc.record(
  {
    vendorId: bytes(16, 16),
    vendorIdIsPen: fc.constant(true as const),
    classId: bytes(16, 16),
    imageDigest: fc.record({ alg: fc.constant(-16), bytes: bytes(32, 32) }),
    componentSlot: fc.nat({ max: 3 }),
    imageSize: fc.maxSafeNat(),
    uri: fc.string({ maxLength: 40 }),
    sourceComponent: fc.nat({ max: 3 }),
    invokeArgs: bytes(0, 8),
    strictOrder: fc.boolean(),
  },
  { requiredKeys: [] },
).map((p) => {
  // The PEN flag only means something with a vendor id.
  if (!p.vendorId) delete p.vendorIdIsPen;
  return p;
});
const { seq } = fc.letrec<{ seq: SuitCommand[]; cmd: SuitCommand }>((tie) => ({
  seq: fc.array(tie('cmd'), { minLength: 1, maxLength: 5 }),
  cmd: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'cmd', withCrossShrink: true },
    fc.record({ kind: fc.constant('condition' as const), code: fc.constantFrom(1, 2, 3, 5, 14, 24), policy: fc.nat({ max: 15 }) }),
    fc.record({ kind: fc.constant('directive' as const), code: fc.constantFrom(21, 22, 23), policy: fc.nat({ max: 15 }) }),
    fc.record({
      kind: fc.constant('set-component-index' as const),
      index: fc.oneof(fc.nat({ max: 3 }), fc.constant(true as const), fc.uniqueArray(fc.nat({ max: 3 }), { minLength: 1, maxLength: 3 })),
    }),
    fc.record({ kind: fc.constant('override-parameters' as const), params }),
    fc.record({ kind: fc.constant('try-each' as const), branches: fc.array(tie('seq') as fc.Arbitrary<SuitCommand[]>, { minLength: 2, maxLength: 3 }), allowNone: fc.boolean() }),
    fc.record({ kind: fc.constant('run-sequence' as const), sequence: tie('seq') as fc.Arbitrary<SuitCommand[]> }),
  ),
}));
const manifest: fc.Arbitrary<Omit<SuitManifest, 'severed'>> = fc.record(
  {
    version: fc.constant(1),
    sequenceNumber: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
    components: fc.array(fc.array(bytes(0, 4), { minLength: 0, maxLength: 3 }), { minLength: 1, maxLength: 4 }),
    sharedSequence: fc.oneof(fc.constant([] as SuitCommand[]), seq),
    referenceUri: fc.string({ maxLength: 20 }),
    validate: seq,
    load: seq,
    invoke: seq,
    payloadFetch: seq,
    install: seq,
  },
  { requiredKeys: ['version', 'sequenceNumber', 'components', 'sharedSequence'] },
);
const sever = fc.subarray<SeverableMember>(['payloadFetch', 'install', 'text']);

describe('round trip properties', () => {
  test('encode -> sign -> verify gives back the same manifest, and the same bytes on re-encoding', () => {
    fc.assert(
      fc.property(manifest, sever, (m, sv) => {
        const env = createSignedEnvelope(m, [key], { sever: sv });
        const v = verifyEnvelope(env, { trust });
        const { severed, ...rest } = v.manifest;
        expect(rest).toEqual(m);
        for (const name of Object.keys(severed)) expect(sv).toContain(name);
        expect(Buffer.from(encodeManifest(v.manifest, sv).manifest).equals(Buffer.from(v.envelope.manifestBytes))).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  test('duplicate map keys are malformed (no parser differential)', () => {
    // {2: h'', 2: h''}: cbor-x alone would keep the last.
    const env = Uint8Array.from([0xa2, 0x02, 0x40, 0x02, 0x40]);
    expect(() => decodeEnvelope(env)).toThrow(expect.objectContaining({ code: 'SUIT_MALFORMED', message: expect.stringMatching(/duplicate/) }));
  });
});
