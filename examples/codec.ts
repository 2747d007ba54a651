/**
 * coapfw/codec: build the request a device sends for block 3 of an image,
 * encode it, decode it back, and see the strict decoder refuse a datagram
 * that a lenient one would accept (token length 9, RFC 7252 §3).
 */
import { isCoapfwError } from 'coapfw';
import { Code, MessageType, OptionNumber, decodeBlock, decodeMessage, describeMessage, encodeBlock, encodeMessage, getOption, pathOptions } from 'coapfw/codec';

const request = {
  type: MessageType.CON,
  code: Code.GET,
  messageId: 0x1234,
  token: Uint8Array.of(0xca, 0xfe),
  options: [...pathOptions('/fw/sha256/9f86d081884c7d65'), { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 3, more: false, szx: 6 }) }],
  payload: new Uint8Array(0),
};
const bytes = encodeMessage(request);
console.log(`encoded ${bytes.length} bytes: ${Buffer.from(bytes).toString('hex')}`);

const back = decodeMessage(bytes);
console.log(`decoded: ${describeMessage(back)}`);
const block = decodeBlock(getOption(back, OptionNumber.BLOCK2)!);
console.log(`block2: num ${block.num}, size ${2 ** (block.szx + 4)}, more ${block.more}`);

const tkl9 = Uint8Array.of(0x49, 0x01, 0x00, 0x01, ...new Uint8Array(9));
try {
  decodeMessage(tkl9);
  console.log('accepted a token of 9 bytes?');
  process.exitCode = 1;
} catch (e) {
  if (!isCoapfwError(e, 'MALFORMED_MESSAGE')) throw e;
  console.log(`rejected: ${e.code} (${e.message})`);
}
