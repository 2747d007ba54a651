import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { CoapfwError } from '../../src/errors.js';
import {
  createSignedEnvelope,
  decodeEnvelope,
  describeEnvelope,
  parsePublicKey,
  planUpdate,
  verifyEnvelope,
  type SuitCommand,
  type TrustPolicy,
} from '../../src/suit/index.js';
import { encodeCbor, tagged } from '../../src/suit/cbor.js';
import { fixture, fixtureText } from './helpers.js';

const trust: TrustPolicy = {
  anchors: [
    { publicKey: parsePublicKey(fixtureText('eddsa/ed25519_public.hex')) },
    { publicKey: parsePublicKey(fixtureText('wg/public_key.pem')) },
  ],
};
const seeds = [
  fixture('eddsa/ed25519-alg-19.suit'),
  fixture('wg/example2.signed.cbor'),
  fixture('wg/example3.signed.cbor'),
  fixture('wg/example4.signed.cbor'),
];

/** Run everything a device would on untrusted bytes; only CoapfwError may escape. */
function process(bytes: Uint8Array): void {
  try {
    describeEnvelope(bytes);
  } catch (e) {
    if (!(e instanceof CoapfwError)) throw e;
  }
  try {
    const v = verifyEnvelope(bytes, { trust });
    planUpdate(v.manifest, { componentSlot: 1 });
  } catch (e) {
    if (!(e instanceof CoapfwError)) throw e;
  }
}

describe('hostile input gives typed errors only', () => {
  test('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (b) => process(b)), { numRuns: 1500 });
  });

  test('random CBOR-ish bytes behind an envelope tag', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (b) => process(Uint8Array.from([0xd8, 0x6b, 0xa2, ...b]))),
      { numRuns: 1000 },
    );
  });

  test('mutated valid envelopes (byte flips, truncation, insertion)', () => {
    const mutation = fc.record({
      seed: fc.integer({ min: 0, max: seeds.length - 1 }),
      flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      cut: fc.option(fc.nat()),
      insert: fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 9 }))),
    });
    fc.assert(
      fc.property(mutation, ({ seed, flips, cut, insert }) => {
        let b = seeds[seed]!.slice();
        for (const [at, v] of flips) b[at % b.length] = v;
        if (insert) {
          const at = insert[0] % b.length;
          b = Uint8Array.from([...b.subarray(0, at), ...insert[1], ...b.subarray(at)]);
        }
        if (cut !== null) b = b.subarray(0, cut % (b.length + 1));
        process(b);
      }),
      { numRuns: 2000 },
    );
  });

  test('a flipped byte in a signed envelope never verifies', () => {
    const base = seeds[0]!;
    fc.assert(
      fc.property(fc.nat({ max: base.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
        const b = base.slice();
        b[at] = b[at]! ^ x;
        expect(() => verifyEnvelope(b, { trust })).toThrow(CoapfwError);
      }),
      { numRuns: 400 },
    );
  });
});

describe('resource limits', () => {
  const code = (f: () => unknown): string | undefined => {
    try {
      f();
      return undefined;
    } catch (e) {
      return (e as CoapfwError).code;
    }
  };
  test('deep nesting', () => {
    const deep = new Uint8Array(5000).fill(0x81);
    expect(code(() => decodeEnvelope(Uint8Array.from([0xd8, 0x6b, ...deep, 0x00])))).toBe('SUIT_LIMIT');
  });
  test('a declared array of 2^32 entries', () => {
    expect(code(() => decodeEnvelope(Uint8Array.from([0x9b, 0, 0, 0, 1, 0, 0, 0, 0, 0])))).toBe('SUIT_LIMIT');
  });
  test('an envelope above the size limit', () => {
    expect(code(() => decodeEnvelope(new Uint8Array(300 * 1024)))).toBe('SUIT_LIMIT');
    expect(code(() => decodeEnvelope(seeds[0]!, { maxEnvelopeBytes: 100 }))).toBe('SUIT_LIMIT');
  });
  test('indefinite lengths and foreign tags are malformed', () => {
    expect(code(() => decodeEnvelope(Uint8Array.from([0xbf, 0xff])))).toBe('SUIT_MALFORMED');
    expect(code(() => decodeEnvelope(encodeCbor(tagged(28, new Map()))))).toBe('SUIT_MALFORMED');
    expect(code(() => decodeEnvelope(Uint8Array.from([0xa0, 0x00])))).toBe('SUIT_MALFORMED');
  });
  test('nested try-each beyond the depth limit', () => {
    let seq: SuitCommand[] = [{ kind: 'directive', code: 23, policy: 2 }];
    for (let i = 0; i < 10; i++) seq = [{ kind: 'try-each', branches: [seq, seq], allowNone: false }];
    const env = createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: [[new Uint8Array(1)]], sharedSequence: [], invoke: seq }, []);
    expect(code(() => decodeEnvelope(env))).toBe('SUIT_LIMIT');
  });
  test('a try-each whose alternatives all fail late costs bounded commands', () => {
    // Work is linear in the manifest size (branches are separate byte strings), but still capped:
    // 4 levels of 4 failing alternatives run 4^4 leaves, above a cap of 100 commands.
    const fail: SuitCommand = { kind: 'condition', code: 14, policy: 0 };
    let seq: SuitCommand[] = [fail];
    for (let i = 0; i < 4; i++) {
      const br = [...Array(4)].map(() => seq);
      seq = [{ kind: 'try-each', branches: br, allowNone: false }];
    }
    const env = createSignedEnvelope({ version: 1, sequenceNumber: 1n, components: [[new Uint8Array(1)]], sharedSequence: [], invoke: seq }, []);
    const m = decodeEnvelope(env, { maxSequenceDepth: 8 }).manifest;
    expect(code(() => planUpdate(m, {}, { maxCommands: 100 }))).toBe('SUIT_LIMIT');
    expect(code(() => planUpdate(m, {}))).toBe('CONDITION_FAILED');
  });
});
