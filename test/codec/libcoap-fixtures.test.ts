/**
 * Datagrams captured from libcoap 4.3.1 (Debian libcoap3-bin) on loopback, 2026-11-23.
 *
 * Client requests: a node:dgram socket bound to 127.0.0.1:33681 printed each
 * datagram it received in hex, while we ran (first datagram of each kept):
 *   coap-client-notls -m get -b 64 -B 1 coap://127.0.0.1:33681/some/path
 *   coap-client-notls -m get -B 1 -T cafe 'coap://127.0.0.1:33681/.well-known/core?rt=firmware'
 *   coap-client-notls -m put -b 32 -B 1 -e <100 x> coap://127.0.0.1:33681/upload
 *   coap-client-notls -m post -N -B 1 -t 42 -e hi 'coap://127.0.0.1:33681/fw/sha256/0123456789abcdef?n=1&m=2'
 *   coap-client-notls -m get -B 1 -b 1024 -O 252,0x0102030405060708 coap://127.0.0.1:33681/fw
 * Server responses: `coap-server-notls -A 127.0.0.1 -p 47113`, requests sent
 * from node:dgram (hex in each case), responses printed in hex.
 */
import { describe, expect, it } from 'vitest';
import { decodeBlock } from '../../src/codec/block.js';
import { parseLinks } from '../../src/codec/link-format.js';
import { decodeMessage, encodeMessage } from '../../src/codec/message.js';
import { Code, ContentFormat, MessageType, OptionNumber as O } from '../../src/codec/numbers.js';
import { decodeUint, getOption, KNOWN_OPTIONS, unknownCriticalOptions, uriPath, uriQuery, validateOptions } from '../../src/codec/options.js';
import { hex, toHex } from './helpers.js';

/** Decode, check the canonical re-encoding, and return the message. */
function roundTrip(h: string): ReturnType<typeof decodeMessage> {
  const bytes = hex(h);
  const m = decodeMessage(bytes);
  expect(toHex(encodeMessage(m))).toBe(toHex(bytes));
  validateOptions(m);
  expect(unknownCriticalOptions(m, KNOWN_OPTIONS)).toEqual([]);
  return m;
}

const block = (m: ReturnType<typeof decodeMessage>, n: number): unknown => decodeBlock(getOption(m, n)!);

describe('libcoap client requests', () => {
  it('GET with Block2 0/0/64 and Uri-Port', () => {
    const m = roundTrip('4101373b0172839144736f6d650470617468c102');
    expect(m).toMatchObject({ type: MessageType.CON, code: Code.GET, messageId: 0x373b });
    expect(toHex(m.token)).toBe('01');
    expect(decodeUint(getOption(m, O.URI_PORT)!)).toBe(33681);
    expect(uriPath(m)).toEqual(['some', 'path']);
    expect(block(m, O.BLOCK2)).toEqual({ num: 0, more: false, szx: 2 });
  });

  it('GET /.well-known/core?rt=firmware with a 4-byte token', () => {
    const m = roundTrip('44015088636166667283914b2e77656c6c2d6b6e6f776e04636f72654b72743d6669726d77617265');
    // libcoap 4.3.1 takes -T as ASCII and sent "caff" (it advances the given token per request).
    expect(Buffer.from(m.token).toString()).toBe('caff');
    expect(uriPath(m)).toEqual(['.well-known', 'core']);
    expect(uriQuery(m)).toEqual(['rt=firmware']);
  });

  it('PUT first block: Block1 0/1/32, Size1 100, Request-Tag, 32-byte payload', () => {
    const m = roundTrip(
      '41033139017283914675706c6f6164d10309d11464d4dbe7c70164ff7878787878787878787878787878787878787878787878787878787878787878',
    );
    expect(m.code).toBe(Code.PUT);
    expect(uriPath(m)).toEqual(['upload']);
    expect(block(m, O.BLOCK1)).toEqual({ num: 0, more: true, szx: 1 });
    expect(decodeUint(getOption(m, O.SIZE1)!)).toBe(100);
    expect(getOption(m, O.REQUEST_TAG)!.length).toBe(4);
    expect(m.payload.length).toBe(32);
  });

  it('NON POST with Content-Format 42 and two Uri-Query options', () => {
    const m = roundTrip(
      '51029c3301728391426677067368613235360d0330313233343536373839616263646566112a336e3d31036d3d32ff6869',
    );
    expect(m.type).toBe(MessageType.NON);
    expect(uriPath(m)).toEqual(['fw', 'sha256', '0123456789abcdef']);
    expect(decodeUint(getOption(m, O.CONTENT_FORMAT)!)).toBe(ContentFormat.OCTET_STREAM);
    expect(uriQuery(m)).toEqual(['n=1', 'm=2']);
    expect(Buffer.from(m.payload).toString()).toBe('hi');
  });

  it('GET with Block2 SZX 6 and an 8-byte Echo option (252, two-step delta)', () => {
    const m = roundTrip('41019ff001728391426677c106d8d80102030405060708');
    expect(block(m, O.BLOCK2)).toEqual({ num: 0, more: false, szx: 6 });
    expect(toHex(getOption(m, O.ECHO)!)).toBe('0102030405060708');
  });
});

describe('libcoap server responses', () => {
  it('2.05 /.well-known/core in one datagram (request 4101000101bb2e77656c6c2d6b6e6f776e04636f7265)', () => {
    const m = roundTrip(
      '6145000101c128ff3c2f3e3b7469746c653d2247656e6572616c20496e666f223b63743d302c3c2f74696d653e3b69663d22636c6f636b223b72743d227469636b73223b7469746c653d22496e7465726e616c20436c6f636b223b63743d303b6f62732c3c2f6173796e633e3b63743d302c3c2f6578616d706c655f646174613e3b7469746c653d224578616d706c652044617461223b63743d303b6f6273',
    );
    expect(m).toMatchObject({ type: MessageType.ACK, code: Code.CONTENT, messageId: 1 });
    expect(decodeUint(getOption(m, O.CONTENT_FORMAT)!)).toBe(ContentFormat.LINK_FORMAT);
    expect(parseLinks(Buffer.from(m.payload).toString())).toEqual([
      { target: '/', attributes: { title: 'General Info', ct: '0' } },
      { target: '/time', attributes: { if: 'clock', rt: 'ticks', title: 'Internal Clock', ct: '0', obs: true } },
      { target: '/async', attributes: { ct: '0' } },
      { target: '/example_data', attributes: { title: 'Example Data', ct: '0', obs: true } },
    ]);
  });

  it('Block2 0/1/16 and 1/1/16 of /.well-known/core with ETag and Size2', () => {
    // requests: ...c100 (Block2 0/0/16) and ...c110 (Block2 1/0/16)
    const b0 = roundTrip('614500020241018128b1085197ff3c2f3e3b7469746c653d2247656e6572');
    const b1 = roundTrip('614500030341018128b1185197ff616c20496e666f223b63743d302c3c2f');
    expect(block(b0, O.BLOCK2)).toEqual({ num: 0, more: true, szx: 0 });
    expect(block(b1, O.BLOCK2)).toEqual({ num: 1, more: true, szx: 0 });
    expect(decodeUint(getOption(b0, O.SIZE2)!)).toBe(151);
    expect(toHex(getOption(b0, O.ETAG)!)).toBe(toHex(getOption(b1, O.ETAG)!));
    expect(Buffer.from([...b0.payload, ...b1.payload]).toString()).toBe('</>;title="General Info";ct=0,</');
  });

  it('RST to an Empty CON ping (request 4000aaaa)', () => {
    expect(roundTrip('7000aaaa')).toMatchObject({ type: MessageType.RST, code: Code.EMPTY, messageId: 0xaaaa });
  });

  it('NON 2.05 whose Max-Age value ends in 0xff right before the payload marker (request 5001bbbb)', () => {
    const m = roundTrip(
      '5045bbbbd30102ffffff546869732069732061207465737420736572766572206d6164652077697468206c6962636f617020287365652068747470733a2f2f6c6962636f61702e6e6574290a436f707972696768742028432920323031302d2d32303232204f6c616620426572676d616e6e203c626572676d616e6e40747a692e6f72673e20616e64206f74686572730a0a',
    );
    expect(decodeUint(getOption(m, O.MAX_AGE)!)).toBe(0x02ffff);
    expect(Buffer.from(m.payload).toString()).toMatch(/^This is a test server made with libcoap/);
  });
});
