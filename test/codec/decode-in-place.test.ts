import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../../src/codec/message.js';

// CON GET, MID 0x1234, token 0xbeef, Uri-Path "fw", payload "hi".
const bytes = (): Uint8Array => encodeMessage({ type: 0, code: 1, messageId: 0x1234, token: Uint8Array.of(0xbe, 0xef), options: [{ number: 11, value: Uint8Array.of(0x66, 0x77) }], payload: Uint8Array.of(0x68, 0x69) });

describe('decodeMessage copy option', () => {
  it('copies by default: changing the datagram afterwards leaves the message as it was', () => {
    const data = bytes();
    const msg = decodeMessage(data);
    data.fill(0);
    expect(msg.token).toEqual(Uint8Array.of(0xbe, 0xef));
    expect(msg.options[0]!.value).toEqual(Uint8Array.of(0x66, 0x77));
    expect(msg.payload).toEqual(Uint8Array.of(0x68, 0x69));
  });

  it('with copy: false decodes the same message as views into the given buffer', () => {
    const data = bytes();
    const msg = decodeMessage(data, { copy: false });
    expect(msg).toEqual(decodeMessage(bytes()));
    expect(msg.payload.buffer).toBe(data.buffer);
    expect(msg.token.byteOffset).toBe(data.byteOffset + 4);
  });

  it('with copy: false still rejects malformed input', () => {
    const data = bytes();
    expect(() => decodeMessage(data.subarray(0, 5), { copy: false })).toThrow(/token of 2 bytes runs past the end/);
  });
});
