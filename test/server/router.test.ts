import { describe, expect, it } from 'vitest';
import type { CoapMessage, CoapOption } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import { routeRequests } from '../../src/server/router.js';

const resource = { methods: new Set<number>([Code.GET]), handle: (): ResponseSpec => ({ code: Code.CONTENT }) };
const handler = routeRequests((path) => (path[0] === 'x' ? resource : undefined));
const req = (options: CoapOption[], code: number = Code.GET): CoapMessage => ({ type: MessageType.CON, code, messageId: 1, token: new Uint8Array(), options, payload: new Uint8Array() });
const answer = (m: CoapMessage) => (handler({ message: m, peer: { address: '127.0.0.1', port: 1 } }) as ResponseSpec).code;

describe('routeRequests', () => {
  it('answers a resource it has', () => {
    expect(answer(req(pathOptions('/x')))).toBe(Code.CONTENT);
  });

  it('answers 4.02 to critical options no resource processes (If-Match, If-None-Match, Accept, Block1)', () => {
    for (const n of [OptionNumber.IF_MATCH, OptionNumber.IF_NONE_MATCH, OptionNumber.ACCEPT, OptionNumber.BLOCK1]) {
      expect(answer(req([...pathOptions('/x'), { number: n, value: new Uint8Array([1]) }])), `option ${n}`).toBe(Code.BAD_OPTION);
    }
  });

  it('answers 4.02 to a repeated Block2 (not repeatable, RFC 7252 §5.4.5)', () => {
    const b = { number: OptionNumber.BLOCK2, value: new Uint8Array([0x06]) };
    expect(answer(req([...pathOptions('/x'), b, b]))).toBe(Code.BAD_OPTION);
  });

  it('answers 4.04, 4.05 and 4.00 where due', () => {
    expect(answer(req(pathOptions('/y')))).toBe(Code.NOT_FOUND);
    expect(answer(req(pathOptions('/x'), Code.DELETE))).toBe(Code.METHOD_NOT_ALLOWED);
    expect(answer(req([{ number: OptionNumber.URI_PATH, value: new TextEncoder().encode('..') }]))).toBe(Code.BAD_REQUEST);
  });
});
