/**
 * The wire side of Block1 receiving (RFC 7959 §2.3, §2.5; RFC 9175 §3),
 * shared by the buffering receiver (block1.ts) and the streaming one
 * (block1-stream.ts): which body a block belongs to, reading Block1 and
 * Size1, checking a block's size, and the responses both send.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { decodeBlock, encodeBlock, type BlockValue } from '../codec/block.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { decodeUint, encodeUint, getOption } from '../codec/options.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import { peerKey } from '../core/transport.js';

const encoder = new TextEncoder();
/** An error response with a short diagnostic payload for the human reading the log (RFC 7252 §5.5.2). */
export const diagnostic = (code: number, text: string, options: ResponseSpec['options'] = []): ResponseSpec => ({ code, options, payload: encoder.encode(text.slice(0, 120)) });

/** Options that tell bodies apart (RFC 9175 §3.3): the target resource and the Request-Tag values. */
const KEY_OPTIONS: ReadonlySet<number> = new Set([OptionNumber.URI_HOST, OptionNumber.URI_PORT, OptionNumber.URI_PATH, OptionNumber.URI_QUERY, OptionNumber.REQUEST_TAG]);

/** The key of the body a request's block belongs to: peer, method, target, Request-Tag (absent differs from empty). */
export function bodyKey(req: CoapRequest): string {
  const parts = [peerKey(req.peer), String(req.message.code)];
  for (const o of req.message.options) if (KEY_OPTIONS.has(o.number)) parts.push(`${o.number}=${bytesToHex(o.value)}`);
  return parts.join('|');
}

/** A request's Block1 and Size1 (undefined when absent), or the 4.02 for a malformed one. */
export function readBlock1(msg: CoapMessage): { readonly block: BlockValue | undefined; readonly size1: number | undefined } | { readonly response: ResponseSpec } {
  try {
    const raw = getOption(msg, OptionNumber.BLOCK1);
    const s = getOption(msg, OptionNumber.SIZE1);
    return { block: raw === undefined ? undefined : decodeBlock(raw), size1: s === undefined ? undefined : decodeUint(s) };
  } catch (e) {
    return { response: diagnostic(Code.BAD_OPTION, (e as Error).message) };
  }
}

/** §2.3: a block with M set carries exactly the block size, the last one at most that; else the 4.00 to answer. */
export function blockSizeError(block: BlockValue, data: Uint8Array): ResponseSpec | undefined {
  const size = 16 << block.szx;
  if ((block.more && data.length !== size) || data.length > size) {
    return diagnostic(Code.BAD_REQUEST, `block1: block ${block.num} has ${data.length} bytes, expected ${block.more ? '' : 'at most '}${size}`);
  }
  return undefined;
}

/** 2.31 Continue for the block at `offset`, Block1 echoed at the preferred size when the client's is larger (§2.3, Figure 6). */
export function continueResponse(block: BlockValue, offset: number, preferredSzx: number): ResponseSpec {
  const szx = Math.min(block.szx, preferredSzx);
  const echo = encodeBlock({ num: offset / (16 << szx), more: true, szx });
  return { code: Code.CONTINUE, options: [{ number: OptionNumber.BLOCK1, value: echo }] };
}

/** 4.13 with Size1 = the limit (§4: the client learns how much the server takes). */
export function tooLargeResponse(maxBody: number): ResponseSpec {
  return diagnostic(Code.REQUEST_ENTITY_TOO_LARGE, `block1: body larger than ${maxBody} bytes`, [{ number: OptionNumber.SIZE1, value: encodeUint(maxBody) }]);
}

/** The final response with the final block's Block1 echoed (M = 0, §2.3), unless the handler set one. */
export function echoFinalBlock(res: ResponseSpec, block: BlockValue): ResponseSpec {
  if (res.options?.some((o) => o.number === OptionNumber.BLOCK1)) return res;
  return { ...res, options: [...(res.options ?? []), { number: OptionNumber.BLOCK1, value: encodeBlock({ ...block, more: false }) }] };
}

/** The final block's request carrying the whole body, without the block-wise options. */
export function wholeRequest(req: CoapRequest, body: Uint8Array): CoapRequest {
  const strip = new Set<number>([OptionNumber.BLOCK1, OptionNumber.SIZE1, OptionNumber.REQUEST_TAG]);
  const message: CoapMessage = { ...req.message, options: req.message.options.filter((o) => !strip.has(o.number)), payload: body };
  return { ...req, message };
}
