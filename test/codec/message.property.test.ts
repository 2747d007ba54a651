/**
 * Property tests: encode/decode round trips, cross-checks against coap-packet,
 * and decoder fuzzing (random and mutated datagrams must decode or throw a
 * CoapfwError('MALFORMED_MESSAGE'), nothing else).
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as coapPacket from 'coap-packet';
import { decodeMessage, encodeMessage, type CoapMessage } from '../../src/codec/message.js';
import { codeToString } from '../../src/codec/numbers.js';
import { unknownCriticalOptions, uriPath, uriQuery, validateOptions, KNOWN_OPTIONS } from '../../src/codec/options.js';
import { CoapfwError } from '../../src/errors.js';
import { arbMessage, normalize } from './arbitraries.js';

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Decode, or return the CoapfwError; any other throw fails the test. */
function tryDecode(data: Uint8Array): CoapMessage | CoapfwError {
  try {
    return decodeMessage(data);
  } catch (e) {
    if (e instanceof CoapfwError && e.code === 'MALFORMED_MESSAGE') return e;
    throw new Error(`decoder threw something other than MALFORMED_MESSAGE for ${hexOf(data)}`, { cause: e });
  }
}

/** Every helper run on a decoded message may only throw CoapfwError. */
function exerciseHelpers(m: CoapMessage): void {
  for (const f of [() => validateOptions(m), () => uriPath(m), () => uriQuery(m), () => unknownCriticalOptions(m, KNOWN_OPTIONS)]) {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(CoapfwError);
    }
  }
}

/** A decoded message re-encodes to exactly the same bytes: CoAP's option encoding is unique. */
function checkCanonical(data: Uint8Array, m: CoapMessage): void {
  expect(hexOf(encodeMessage(m))).toBe(hexOf(data));
}

const valid = arbMessage.map((m) => encodeMessage(m));

describe('encode/decode properties', () => {
  it('decode(encode(m)) equals m with options sorted stably', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        expect(normalize(decodeMessage(encodeMessage(m)))).toEqual(normalize(m));
      }),
      { numRuns: 2000 },
    );
  });

  it('encode(decode(bytes)) reproduces the bytes of any valid datagram', () => {
    fc.assert(
      fc.property(valid, (bytes) => {
        checkCanonical(bytes, decodeMessage(bytes));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('cross-check with coap-packet', () => {
  const typeFlags = (t: number): { confirmable: boolean; ack: boolean; reset: boolean } => ({
    confirmable: t === 0,
    ack: t === 2,
    reset: t === 3,
  });

  it('coap-packet parses what we encode identically', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        const p = coapPacket.parse(Buffer.from(encodeMessage(m)));
        expect(p.code).toBe(codeToString(m.code));
        expect({ confirmable: p.confirmable, ack: p.ack, reset: p.reset }).toEqual(typeFlags(m.type));
        expect(p.messageId).toBe(m.messageId);
        expect(hexOf(p.token)).toBe(hexOf(m.token));
        const theirs = p.options.map((o) => [o.name, hexOf(o.value)]);
        const ours = (normalize(m) as { options: Array<[number, string]> }).options;
        expect(theirs.length).toBe(ours.length);
        expect(theirs.map(([, v]) => v)).toEqual(ours.map(([, v]) => v));
        expect(hexOf(p.payload)).toBe(hexOf(m.payload));
      }),
      { numRuns: 1000 },
    );
  });

  it('we decode what coap-packet generates', () => {
    // coap-packet names known options; unknown ones are passed as decimal strings.
    const names: Record<number, string> = { 1: 'If-Match', 4: 'ETag', 11: 'Uri-Path', 12: 'Content-Format', 15: 'Uri-Query', 23: 'Block2', 27: 'Block1', 28: 'Size2', 60: 'Size1' };
    const opt = fc.record({ number: fc.constantFrom(1, 4, 11, 12, 15, 23, 27, 28, 60, 252, 292, 2000), value: fc.uint8Array({ maxLength: 20 }) });
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 1, max: 255 }),
        fc.integer({ min: 0, max: 65535 }),
        fc.uint8Array({ maxLength: 8 }),
        fc.array(opt, { maxLength: 6 }),
        fc.uint8Array({ maxLength: 100 }),
        (type, code, messageId, token, options, payload) => {
          const bytes = coapPacket.generate({
            ...typeFlags(type),
            code: codeToString(code),
            messageId,
            token: Buffer.from(token),
            options: options.map((o) => ({ name: names[o.number] ?? String(o.number), value: Buffer.from(o.value) })),
            payload: Buffer.from(payload),
          } as never);
          const m = decodeMessage(bytes);
          expect(normalize(m)).toEqual(normalize({ type: type as CoapMessage['type'], code, messageId, token, options, payload }));
          checkCanonical(bytes, m);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('decoder fuzzing', () => {
  const seen = { ok: 0, malformed: 0 };
  const check = (data: Uint8Array): void => {
    const r = tryDecode(data);
    if (r instanceof CoapfwError) {
      seen.malformed++;
      return;
    }
    seen.ok++;
    checkCanonical(data, r);
    expect(normalize(decodeMessage(encodeMessage(r)))).toEqual(normalize(r));
    exerciseHelpers(r);
  };

  it('random bytes: a message or MALFORMED_MESSAGE', () => {
    // Random datagrams starting 0x4x/0x5x/0x6x/0x7x reach the option parser far more often.
    const header = fc.tuple(fc.integer({ min: 0x40, max: 0x78 }), fc.uint8Array({ maxLength: 64 }));
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), header.map(([b, rest]) => Uint8Array.of(b, ...rest))), check),
      { numRuns: 5000 },
    );
    // The generator must exercise both outcomes, or the property says little.
    expect(seen.ok).toBeGreaterThan(100);
    expect(seen.malformed).toBeGreaterThan(100);
  });

  it('mutated valid datagrams (bit flips, truncation, insertion, deletion)', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 4 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 4 }) }),
    );
    type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;
    const apply = (b: Uint8Array, ms: readonly Mutation[]): Uint8Array => {
      let out = Uint8Array.from(b);
      for (const m of ms) {
        const at = out.length === 0 ? 0 : m.at % (out.length + 1);
        if (m.kind === 'flip' && out.length > 0) out[at % out.length]! ^= 1 << m.bit;
        else if (m.kind === 'truncate') out = out.slice(0, at);
        else if (m.kind === 'insert') out = Uint8Array.from([...out.subarray(0, at), ...m.bytes, ...out.subarray(at)]);
        else if (m.kind === 'delete') out = Uint8Array.from([...out.subarray(0, at), ...out.subarray(at + m.n)]);
      }
      return out;
    };
    seen.ok = 0;
    seen.malformed = 0;
    fc.assert(
      fc.property(valid, fc.array(mutation, { minLength: 1, maxLength: 3 }), (bytes, ms) => {
        check(apply(bytes, ms));
      }),
      { numRuns: 5000 },
    );
    expect(seen.ok).toBeGreaterThan(100);
    expect(seen.malformed).toBeGreaterThan(100);
  });
});
