/**
 * RFC 7959 §3.1 Figure 2 ("Simple Block-wise GET") and §3.2 Figure 8
 * (Block1 PUT), written out as datagrams by hand from the figures' notation.
 * Payload bytes are filler: the figures give only their sizes.
 */
import { describe, expect, it } from 'vitest';
import { decodeBlock, encodeBlock } from '../../src/codec/block.js';
import { decodeMessage, encodeMessage, type CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber as O } from '../../src/codec/numbers.js';
import { getOption, pathOptions, uriPath } from '../../src/codec/options.js';
import { hex, toHex } from './helpers.js';

const filler = (n: number): string => '2a'.repeat(n);

describe('RFC 7959 Figure 2: simple block-wise GET of /status, 128-byte blocks', () => {
  // [request hex, response hex, response Block2 as NUM/M/SZX]
  const exchange: Array<[string, string, [number, boolean, number]]> = [
    // CON [MID=1234], GET, /status  ->  ACK [MID=1234], 2.05 Content, 2:0/1/128
    ['400104d2b6737461747573', `604504d2d10a0bff${filler(128)}`, [0, true, 3]],
    // CON [MID=1235], GET, /status, 2:1/0/128  ->  ACK [MID=1235], 2.05 Content, 2:1/1/128
    ['400104d3b6737461747573c113', `604504d3d10a1bff${filler(128)}`, [1, true, 3]],
    // CON [MID=1236], GET, /status, 2:2/0/128  ->  ACK [MID=1236], 2.05 Content, 2:2/0/128
    ['400104d4b6737461747573c123', `604504d4d10a23ff${filler(53)}`, [2, false, 3]],
  ];
  exchange.forEach(([reqHex, resHex, [num, more, szx]], i) => {
    it(`exchange ${i + 1}`, () => {
      const req = decodeMessage(hex(reqHex));
      expect(req).toMatchObject({ type: MessageType.CON, code: Code.GET, messageId: 1234 + i });
      expect(uriPath(req)).toEqual(['status']);
      const b2 = getOption(req, O.BLOCK2);
      if (i === 0) expect(b2).toBeUndefined();
      else expect(decodeBlock(b2!)).toEqual({ num: i, more: false, szx: 3 });

      // Build the response from the figure's notation and compare with the hand-written bytes.
      const res: CoapMessage = {
        type: MessageType.ACK,
        code: Code.CONTENT,
        messageId: 1234 + i,
        token: new Uint8Array(0),
        options: [{ number: O.BLOCK2, value: encodeBlock({ num, more, szx }) }],
        payload: hex(resHex.slice(16)),
      };
      expect(toHex(encodeMessage(res))).toBe(resHex);
      expect(decodeBlock(getOption(decodeMessage(hex(resHex)), O.BLOCK2)!)).toEqual({ num, more, szx });
    });
  });
});

describe('RFC 7959 Figure 8: Block1 PUT /options, 128-byte blocks', () => {
  it('CON PUT 1:0/1/128 then ACK 2.31 Continue 1:0/1/128', () => {
    const put: CoapMessage = {
      type: MessageType.CON,
      code: Code.PUT,
      messageId: 1234,
      token: new Uint8Array(0),
      options: [...pathOptions('/options'), { number: O.BLOCK1, value: encodeBlock({ num: 0, more: true, szx: 3 }) }],
      payload: hex(filler(128)),
    };
    // Uri-Path (11) "options": b7...; Block1 (27) delta 16: d1 03 0b
    expect(toHex(encodeMessage(put))).toBe(`400304d2b76f7074696f6e73d1030bff${filler(128)}`);
    const ack = decodeMessage(hex('605f04d2d10e0b'));
    expect(ack).toMatchObject({ type: MessageType.ACK, code: Code.CONTINUE });
    expect(decodeBlock(getOption(ack, O.BLOCK1)!)).toEqual({ num: 0, more: true, szx: 3 });
  });
});
