/**
 * Which blocks a Q-Block2 request asks for (RFC 9177 §4.4), and the response
 * carrying one of them. Pure: the burst logic (qblock2-server.ts) decides
 * when they go.
 */
import { blockSize, encodeBlock } from '../codec/block.js';
import type { CoapOption } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { encodeUint } from '../codec/options.js';
import { CoapfwError } from '../errors.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import { blockCount } from './bitmap.js';
import type { QBlock2Request } from './qblock2-options.js';
import type { ByteSource } from './source.js';

/** The blocks to send, at the server's block size. */
export interface QBlock2Selection {
  readonly szx: number;
  /** Blocks of the representation at `szx`. */
  readonly total: number;
  /** Ascending, each once (§4.4: overlapping options draw one instance of a block). */
  readonly blocks: readonly number[];
  /** The MAX_PAYLOADS_SET after which an unanswered server continues on its own (body and Continue only). */
  readonly continueFrom: number | undefined;
}

/**
 * Resolve `req` against a representation of `size` bytes. A client asking
 * for larger blocks than `maxSzx` gets the server's size, NUM rescaled
 * (RFC 7959 §2.4). A block that starts past the end is a 4.02, as for Block2.
 */
export function selectBlocks(req: QBlock2Request, size: number, maxSzx: number, maxPayloads: number): QBlock2Selection {
  const szx = Math.min(req.szx, maxSzx);
  const shift = req.szx - szx;
  const total = blockCount(size, blockSize(szx));
  const setEnd = (n: number): number => Math.min(total, (Math.floor(n / maxPayloads) + 1) * maxPayloads);
  const check = (n: number): number => {
    if (n >= total) {
      throw new CoapfwError('BAD_BLOCK_OPTION', `q-block2: block ${n} (size ${blockSize(szx)}) starts past the end of ${size} bytes`, { responseCode: Code.BAD_OPTION, block: n });
    }
    return n;
  };
  switch (req.kind) {
    case 'body':
      return { szx, total, blocks: range(0, Math.min(total, maxPayloads)), continueFrom: maxPayloads };
    case 'continue': {
      const start = check(req.num << shift);
      return { szx, total, blocks: range(start, Math.min(total, start + maxPayloads)), continueFrom: start + maxPayloads };
    }
    case 'blocks': {
      const out: number[] = [];
      for (const item of req.items) {
        const first = check(item.num << shift);
        // M set: this block and the rest of its MAX_PAYLOADS_SET; a larger requested block covers 2^shift of ours.
        const end = item.more ? setEnd(first) : Math.min(total, first + (1 << shift));
        for (let n = Math.max(first, (out[out.length - 1] ?? -1) + 1); n < end; n++) out.push(n);
      }
      return { szx, total, blocks: out, continueFrom: undefined };
    }
  }
}

function range(start: number, end: number): number[] {
  const out: number[] = [];
  for (let n = start; n < end; n++) out.push(n);
  return out;
}

/**
 * The 2.05 carrying block `num`: ETag (§4.4: the same for every payload of a
 * body), Content-Format, Q-Block2 with M set unless it is the last block, and
 * Size2 in every payload (§4.6).
 */
export function qblock2Response(source: ByteSource, num: number, szx: number, total: number): ResponseSpec | Promise<ResponseSpec> {
  const size = blockSize(szx);
  const options: CoapOption[] = [{ number: OptionNumber.ETAG, value: source.etag }];
  if (source.contentFormat !== undefined) options.push({ number: OptionNumber.CONTENT_FORMAT, value: encodeUint(source.contentFormat) });
  options.push({ number: OptionNumber.Q_BLOCK2, value: encodeBlock({ num, more: num < total - 1, szx }) });
  options.push({ number: OptionNumber.SIZE2, value: encodeUint(source.size) });
  const offset = num * size;
  const data = offset >= source.size ? new Uint8Array(0) : source.read(offset, size);
  if (data instanceof Promise) return data.then((payload): ResponseSpec => ({ code: Code.CONTENT, options, payload }));
  return { code: Code.CONTENT, options, payload: data };
}
