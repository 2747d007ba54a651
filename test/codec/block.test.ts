import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { blockAt, blockOffset, blockSize, decodeBlock, encodeBlock, szxForSize } from '../../src/codec/block.js';
import { isCoapfwError } from '../../src/errors.js';
import { hex, toHex } from './helpers.js';

describe('Block option value (RFC 7959 §2.2)', () => {
  // Values from RFC 7959 §3 figures: "2:0/1/128" = NUM 0, M 1, SZX 3 etc.
  const table: Array<[string, number, boolean, number]> = [
    ['', 0, false, 0],
    ['0b', 0, true, 3], // 2:0/1/128 (Figure 2)
    ['1b', 1, true, 3], // 2:1/1/128
    ['22', 2, false, 2], // 2:2/0/64 request (Figure 3, smaller size)
    ['0a', 0, true, 2], // 2:0/1/64 (Figure 3)
    ['5a', 5, true, 2], // 2:5/1/64
    ['16', 1, false, 6], // 1:1/0/1024 ... NUM 1 SZX 6
    ['0100', 16, false, 0],
    ['fffff6', 0xfffff, false, 6],
  ];
  for (const [h, num, more, szx] of table) {
    it(`decodes/encodes ${h || '(empty)'} as NUM ${num} M ${more} SZX ${szx}`, () => {
      expect(decodeBlock(hex(h))).toEqual({ num, more, szx });
      expect(toHex(encodeBlock({ num, more, szx }))).toBe(h);
    });
  }

  it('accepts leading zero bytes (RFC 7252 §3.2)', () => {
    expect(decodeBlock(hex('00001b'))).toEqual({ num: 1, more: true, szx: 3 });
  });

  it('rejects SZX 7 and values over 3 bytes with BAD_BLOCK_OPTION', () => {
    expect(() => decodeBlock(hex('07'))).toThrow(/SZX 7 is reserved/);
    expect(() => decodeBlock(hex('0f'))).toThrowError(expect.objectContaining({ code: 'BAD_BLOCK_OPTION' }));
    expect(() => decodeBlock(hex('00000016'))).toThrowError(expect.objectContaining({ code: 'BAD_BLOCK_OPTION' }));
  });

  it('encodeBlock rejects NUM >= 2^20 and SZX outside 0..6', () => {
    for (const b of [
      { num: 0x100000, more: false, szx: 0 },
      { num: -1, more: false, szx: 0 },
      { num: 1.5, more: false, szx: 0 },
      { num: 0, more: false, szx: 7 },
    ]) {
      expect(() => encodeBlock(b)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('block sizes and offsets', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map(blockSize)).toEqual([16, 32, 64, 128, 256, 512, 1024]);
    expect([16, 32, 64, 128, 256, 512, 1024].map(szxForSize)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    for (const bad of [0, 8, 15, 17, 2048, 1000, -16]) expect(() => szxForSize(bad)).toThrow(/size must be/);
    expect(() => blockSize(7)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(blockOffset({ num: 5, more: true, szx: 2 })).toBe(320);
    // RFC 7959 §2.4 / Figure 3: switching from 128 to 64 bytes, block 1/128 is block 2/64.
    expect(blockAt(128, 2)).toEqual({ num: 2, more: false, szx: 2 });
    expect(() => blockAt(100, 2)).toThrowError(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('round-trips every valid value (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffff }), fc.boolean(), fc.integer({ min: 0, max: 6 }), (num, more, szx) => {
        const v = encodeBlock({ num, more, szx });
        expect(v.length).toBeLessThanOrEqual(3);
        expect(decodeBlock(v)).toEqual({ num, more, szx });
      }),
    );
  });

  it('decodes any 0..4 byte value to a block or a BAD_BLOCK_OPTION (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4 }), (v) => {
        try {
          const b = decodeBlock(v);
          expect(b.szx).toBeLessThan(7);
          expect(b.num).toBeLessThanOrEqual(0xfffff);
        } catch (e) {
          expect(isCoapfwError(e, 'BAD_BLOCK_OPTION')).toBe(true);
        }
      }),
    );
  });
});
