/**
 * Q-Block2 (RFC 9177 §4) option values, the client's requests and the
 * server's strict reading of them.
 *
 * The option is 31, critical, unsafe, repeatable in a request for missing
 * blocks, a uint of 0..3 bytes laid out like Block2: NUM << 4 | M << 3 | SZX
 * (§4.2, RFC 7959 §2.2). In a request (§4.4) an unset M asks for just that
 * block; a set M asks, for NUM 0, for the entire body; for NUM a non-zero
 * multiple of MAX_PAYLOADS, it is the 'Continue' of the next MAX_PAYLOADS_SET;
 * for any other NUM, for that block and the rest of its MAX_PAYLOADS_SET.
 */
import { decodeBlock, encodeBlock, MAX_SZX } from '../codec/block.js';
import { encodeMessage, type CoapMessage, type CoapOption } from '../codec/message.js';
import { Code, MessageType, OptionNumber } from '../codec/numbers.js';
import { getOption, getOptions } from '../codec/options.js';
import { CoapfwError } from '../errors.js';
import type { RequestSpec } from '../core/request.js';

/** One Q-Block2 option of a request. */
export interface QBlockItem {
  readonly num: number;
  readonly more: boolean;
}

/** A request's Q-Block2 options, classified (RFC 9177 §4.4). */
export type QBlock2Request =
  /** NUM 0 with M set: send the entire body. */
  | { readonly kind: 'body'; readonly szx: number }
  /** NUM a non-zero multiple of MAX_PAYLOADS with M set: the previous set arrived, send the next. */
  | { readonly kind: 'continue'; readonly num: number; readonly szx: number }
  /** One or more blocks (M unset), or a block and the rest of its set (M set), ascending. */
  | { readonly kind: 'blocks'; readonly items: readonly QBlockItem[]; readonly szx: number };

/** Limits on what a server reads from one request. */
export interface QBlock2ParseOptions {
  /** MAX_PAYLOADS (both ends SHOULD agree, §7.2). Default 10. */
  readonly maxPayloads?: number;
  /** Most Q-Block2 options read from one request. Default 256. */
  readonly maxOptions?: number;
}

/** RFC 7252 §4.6: without Path MTU knowledge a message SHOULD fit in 1152 bytes. */
export const DEFAULT_MAX_DATAGRAM = 1152;

/** A Q-Block2 option. Throws INVALID_ARGUMENT for NUM outside 0..2^20-1 or SZX outside 0..6. */
export function qblock2Option(num: number, more: boolean, szx: number): CoapOption {
  return { number: OptionNumber.Q_BLOCK2, value: encodeBlock({ num, more, szx }) };
}

const badRequest = (msg: string): CoapfwError => new CoapfwError('BAD_QBLOCK_REQUEST', `q-block2: ${msg}`, { responseCode: Code.BAD_REQUEST });
const badOption = (msg: string, cause?: unknown): CoapfwError =>
  new CoapfwError('BAD_OPTION', `q-block2: ${msg}`, { responseCode: Code.BAD_OPTION, cause });

/**
 * Read the Q-Block2 options of a request; undefined when it has none.
 *
 * Throws CoapfwError with `responseCode` set, and nothing else:
 * - BAD_OPTION (4.02): a value longer than 3 bytes or SZX 7; Block2 beside Q-Block2 (§4.1: no mix).
 * - BAD_QBLOCK_REQUEST (4.00): block numbers not strictly increasing (§4.4), unequal SZX,
 *   more options than `maxOptions`, or a repeated option that is not a list of blocks.
 */
export function parseQBlock2Request(msg: CoapMessage, options: QBlock2ParseOptions = {}): QBlock2Request | undefined {
  const raw = getOptions(msg, OptionNumber.Q_BLOCK2);
  if (raw.length === 0) return undefined;
  const maxPayloads = options.maxPayloads ?? 10;
  const maxOptions = options.maxOptions ?? 256;
  if (getOption(msg, OptionNumber.BLOCK2) !== undefined) throw badOption('Block2 and Q-Block2 in one request (RFC 9177 §4.1)');
  if (raw.length > maxOptions) throw badRequest(`${raw.length} Q-Block2 options exceed the limit of ${maxOptions}`);
  const items: QBlockItem[] = [];
  let szx = -1;
  for (const v of raw) {
    let b;
    try {
      b = decodeBlock(v);
    } catch (e) {
      throw badOption((e as Error).message, e);
    }
    if (szx >= 0 && b.szx !== szx) throw badRequest(`SZX ${b.szx} differs from ${szx} in the same request`);
    szx = b.szx;
    const prev = items[items.length - 1];
    // §4.4: increasing block numbers, no duplicates; the server SHOULD answer others with 4.00.
    if (prev !== undefined && b.num <= prev.num) throw badRequest(`block ${b.num} follows block ${prev.num}: numbers must increase (RFC 9177 §4.4)`);
    items.push({ num: b.num, more: b.more });
  }
  if (items.length === 1) {
    const { num, more } = items[0]!;
    if (more && num === 0) return { kind: 'body', szx };
    if (more && num % maxPayloads === 0) return { kind: 'continue', num, szx };
  }
  return { kind: 'blocks', items, szx };
}

/** Resource options (Uri-Path, Uri-Query, ...) without what a Q-Block2 request must set itself. */
function resourceOptions(options: readonly CoapOption[]): CoapOption[] {
  // §4.4: an ETag in a request for missing blocks could draw a 2.03 without payload.
  const drop: ReadonlySet<number> = new Set([OptionNumber.BLOCK2, OptionNumber.Q_BLOCK2, OptionNumber.ETAG, OptionNumber.SIZE2]);
  return options.filter((o) => !drop.has(o.number));
}

/**
 * The first request for a body: GET with Q-Block2 0/1/SZX and Size2 (Figure 8),
 * or, resuming at block `from`, Q-Block2 from/1/SZX (that block and the rest of
 * its set). §4.1: support is only reliably learned from a Confirmable request
 * (a server without Q-Block answers 4.02), so `confirmable` defaults to true.
 */
export function bodyRequest(options: readonly CoapOption[], szx: number = MAX_SZX, confirmable = true, from = 0): RequestSpec {
  return {
    code: Code.GET,
    confirmable,
    options: [...resourceOptions(options), qblock2Option(from, true, szx), { number: OptionNumber.SIZE2, value: new Uint8Array(0) }],
  };
}

/**
 * The request that learns whether a server does Q-Block2 (§4.1: only a
 * Confirmable request reliably draws a 4.02 from a server that does not):
 * a CON GET for block `num` alone (M unset, §4.4) with Size2, so the answer
 * also tells the body's size. One block, not the body: the rest is then
 * asked for with NON requests whose answers are NON, so that no body is
 * sent partly as CON and partly as NON (§7).
 */
export function probeRequest(options: readonly CoapOption[], num: number, szx: number = MAX_SZX): RequestSpec {
  return {
    code: Code.GET,
    confirmable: true,
    options: [...resourceOptions(options), qblock2Option(num, false, szx), { number: OptionNumber.SIZE2, value: new Uint8Array(0) }],
  };
}

/** The 'Continue' for the MAX_PAYLOADS_SET starting at `num` (Figure 9: NON GET QB2:10/1/1024). */
export function continueRequest(options: readonly CoapOption[], num: number, szx: number, maxPayloads = 10): RequestSpec {
  if (!Number.isInteger(num) || num <= 0 || num % maxPayloads !== 0) {
    throw new CoapfwError('INVALID_ARGUMENT', `q-block2: a Continue names a non-zero multiple of MAX_PAYLOADS (${maxPayloads}), got ${num}`);
  }
  return { code: Code.GET, confirmable: false, options: [...resourceOptions(options), qblock2Option(num, true, szx)] };
}

/** Limits of {@link missingRequests}. */
export interface MissingRequestLimits {
  /** Most Q-Block2 options per request. Default 64. */
  readonly maxPerRequest?: number;
  /** Largest encoded request, in bytes, with an 8-byte token. Default 1152 (RFC 7252 §4.6). */
  readonly maxDatagram?: number;
}

/**
 * Requests for the given missing blocks (ascending, no duplicates), one
 * Q-Block2 option per block with M unset (Figure 10: QB2:1/0/1024 QB2:9/0/1024)
 * or, for an item with `more`, that block and the rest of its MAX_PAYLOADS_SET
 * (Figure 11: QB2:2/1/1024), in as few NON GETs as fit `maxDatagram` and
 * `maxPerRequest`.
 */
export function missingRequests(options: readonly CoapOption[], blocks: readonly (number | QBlockItem)[], szx: number, limits: MissingRequestLimits = {}): RequestSpec[] {
  const maxPer = limits.maxPerRequest ?? 64;
  const maxDatagram = limits.maxDatagram ?? DEFAULT_MAX_DATAGRAM;
  if (!Number.isInteger(maxPer) || maxPer < 1) throw new CoapfwError('INVALID_ARGUMENT', `q-block2: maxPerRequest must be >= 1, got ${maxPer}`);
  const items = blocks.map((b) => (typeof b === 'number' ? { num: b, more: false } : b));
  for (let i = 1; i < items.length; i++) {
    if (!(items[i]!.num > items[i - 1]!.num)) throw new CoapfwError('INVALID_ARGUMENT', 'q-block2: missing blocks must be ascending without duplicates (RFC 9177 §4.4)');
  }
  const base = resourceOptions(options);
  const out: RequestSpec[] = [];
  let i = 0;
  while (i < items.length) {
    const batch: CoapOption[] = [qblock2Option(items[i]!.num, items[i]!.more, szx)];
    // Repeats of option 31 after the first have delta 0: each costs 1 header byte plus its value.
    let size = encodedSize(base, batch[0]!);
    if (size > maxDatagram) throw new CoapfwError('INVALID_ARGUMENT', `q-block2: a request with one Q-Block2 option takes ${size} bytes, more than ${maxDatagram}`);
    for (i++; i < items.length && batch.length < maxPer; i++) {
      const o = qblock2Option(items[i]!.num, items[i]!.more, szx);
      if (size + 1 + o.value.length > maxDatagram) break;
      size += 1 + o.value.length;
      batch.push(o);
    }
    out.push({ code: Code.GET, confirmable: false, options: [...base, ...batch] });
  }
  return out;
}

function encodedSize(base: readonly CoapOption[], first: CoapOption): number {
  const token = new Uint8Array(8);
  return encodeMessage({ type: MessageType.NON, code: Code.GET, messageId: 0, token, options: [...base, first], payload: new Uint8Array(0) }).length;
}
