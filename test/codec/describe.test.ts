import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { describeMessage } from '../../src/codec/describe.js';
import { decodeMessage } from '../../src/codec/message.js';
import { hex } from './helpers.js';
import { arbMessage } from './arbitraries.js';

describe('describeMessage', () => {
  it('renders RFC 7252 Figure 17 and a libcoap Block2 response', () => {
    expect(describeMessage(decodeMessage(hex('41017d3520bb74656d7065726174757265')))).toBe(
      'CON 0.01 GET mid=32053 token=20 Uri-Path:"temperature"',
    );
    expect(describeMessage(decodeMessage(hex('614500020241018128b1085197ff3c2f3e3b7469746c653d2247656e6572')))).toBe(
      'ACK 2.05 CONTENT mid=2 token=02 ETag:0x01 Content-Format:40 Block2:0/1/16 Size2:151 payload=16B',
    );
    expect(describeMessage(decodeMessage(hex('7000aaaa')))).toBe('RST 0.00 mid=43690');
  });

  it('falls back to hex for unknown options, bad UTF-8 and over-long values', () => {
    // Option 9 (unknown), Uri-Path 0xc3 (truncated UTF-8), Block2 SZX 7, Size2 of 5 bytes.
    expect(describeMessage(decodeMessage(hex('40010001 91ff 21c3 c107 55 0100000000 ff00')))).toBe(
      'CON 0.01 GET mid=1 Option9:0xff Uri-Path:0xc3 Block2:0/0/BERT Size2:0x0100000000 payload=1B',
    );
  });

  it('never throws on any encodable message (property)', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        expect(typeof describeMessage(m)).toBe('string');
      }),
    );
  });
});
