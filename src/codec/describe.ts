/**
 * One-line human-readable rendering of a message for logs and the CLI's
 * verbose mode, in the spirit of libcoap's `coap_show_pdu`.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { CoapMessage, CoapOption } from './message.js';
import { Code, OptionNumber, codeToString } from './numbers.js';
import { OPTION_DEFINITIONS } from './options.js';

const TYPE_NAMES = ['CON', 'NON', 'ACK', 'RST'] as const;

const CODE_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(Code).map(([name, code]) => [code, name] as [number, string]),
);

const utf8 = new TextDecoder('utf-8', { fatal: true });
const BLOCK_OPTIONS: ReadonlySet<number> = new Set([
  OptionNumber.BLOCK1,
  OptionNumber.BLOCK2,
  OptionNumber.Q_BLOCK1,
  OptionNumber.Q_BLOCK2,
]);


function uint(v: Uint8Array): number {
  let n = 0;
  for (const x of v) n = n * 256 + x;
  return n;
}

/** Render one option value by its registered format; unknown or malformed values as hex. */
function describeOption(o: CoapOption): string {
  const d = OPTION_DEFINITIONS.get(o.number);
  const name = d?.name ?? `Option${o.number}`;
  if (d === undefined || o.value.length > d.maxLength) return `${name}:0x${bytesToHex(o.value)}`;
  if (BLOCK_OPTIONS.has(o.number)) {
    // RFC 7959 §2.2 notation NUM/M/size; SZX 7 shown as BERT.
    const n = uint(o.value);
    const szx = n & 7;
    return `${name}:${Math.floor(n / 16)}/${(n >> 3) & 1}/${szx === 7 ? 'BERT' : 16 << szx}`;
  }
  switch (d.format) {
    case 'uint':
      return `${name}:${uint(o.value)}`;
    case 'string':
      try {
        return `${name}:${JSON.stringify(utf8.decode(o.value))}`;
      } catch {
        return `${name}:0x${bytesToHex(o.value)}`;
      }
    case 'empty':
      return name;
    case 'opaque':
      return `${name}:0x${bytesToHex(o.value)}`;
  }
}

/**
 * Describe a message on one line, e.g.
 * `CON 0.01 GET mid=31988 token=20 Uri-Path:"temperature" Block2:1/0/128`
 * followed by `payload=<n>B` when there is a payload. For logs only: the
 * format may change.
 */
export function describeMessage(m: CoapMessage): string {
  const name = CODE_NAMES.get(m.code);
  const parts = [TYPE_NAMES[m.type] ?? `T${String(m.type)}`, codeToString(m.code)];
  if (name !== undefined && m.code !== 0) parts.push(name);
  parts.push(`mid=${m.messageId}`);
  if (m.token.length > 0) parts.push(`token=${bytesToHex(m.token)}`);
  for (const o of m.options) parts.push(describeOption(o));
  if (m.payload.length > 0) parts.push(`payload=${m.payload.length}B`);
  return parts.join(' ');
}
