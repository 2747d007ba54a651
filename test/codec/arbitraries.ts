/** fast-check generators for CoAP messages, shared by the codec property tests. */
import fc from 'fast-check';
import type { CoapMessage, CoapOption } from '../../src/codec/message.js';
import type { MessageType } from '../../src/codec/numbers.js';

const optionNumber = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(1, 3, 4, 5, 6, 7, 8, 11, 12, 14, 15, 17, 19, 20, 23, 27, 28, 31, 35, 39, 60, 252, 258, 292) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 300 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 65535 }) },
);

const optionValue = fc.oneof(
  { weight: 8, arbitrary: fc.uint8Array({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 13, maxLength: 300 }) },
);

/** Any option the encoder accepts. */
export const arbOption: fc.Arbitrary<CoapOption> = fc.record({ number: optionNumber, value: optionValue });

/** Any message the encoder accepts (Empty messages carry nothing, RFC 7252 §4.1). */
export const arbMessage: fc.Arbitrary<CoapMessage> = fc.oneof(
  {
    weight: 9,
    arbitrary: fc.record({
      type: fc.integer({ min: 0, max: 3 }).map((t) => t as MessageType),
      code: fc.integer({ min: 1, max: 255 }),
      messageId: fc.integer({ min: 0, max: 65535 }),
      token: fc.uint8Array({ maxLength: 8 }),
      options: fc.array(arbOption, { maxLength: 8 }),
      payload: fc.oneof(fc.constant(new Uint8Array(0)), fc.uint8Array({ maxLength: 200 })),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.integer({ min: 0, max: 3 }).map((t) => t as MessageType),
      code: fc.constant(0),
      messageId: fc.integer({ min: 0, max: 65535 }),
      token: fc.constant(new Uint8Array(0)),
      options: fc.constant([]),
      payload: fc.constant(new Uint8Array(0)),
    }),
  },
);

/** Plain, comparable form of a message: hex strings, options sorted stably by number. */
export function normalize(m: CoapMessage): unknown {
  const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
  return {
    type: m.type,
    code: m.code,
    messageId: m.messageId,
    token: hex(m.token),
    options: [...m.options].sort((a, b) => a.number - b.number).map((o) => [o.number, hex(o.value)]),
    payload: hex(m.payload),
  };
}
