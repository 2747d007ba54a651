/**
 * Stateless Block2 serving (RFC 7959 §2.2–2.4): every block is answered from
 * the request alone, so a device can ask for any block with a fresh token, on
 * a new connection, after a reboot, and the server keeps nothing per transfer.
 */
import { blockSize, decodeBlock, encodeBlock, MAX_SZX } from '../codec/block.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { encodeUint, getOption } from '../codec/options.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import type { ByteSource } from './source.js';
import { EMPTY } from '../codec/bytes.js';

/** Block2 serving options. */
export interface Block2ServeOptions {
  /** Largest block size exponent the server sends (0..6, 6 = 1024 bytes). Default 6. */
  readonly maxSzx?: number;
}


/**
 * Answer a GET for `source`, honouring the request's Block2 (block number and
 * size, early negotiation) and Size2 options.
 *
 * - No Block2 and the content fits in one block: the whole content, no Block2.
 * - No Block2 and it does not fit: block 0 at the server's size (late negotiation).
 * - Block2 with SZX larger than the server's: the server's size, NUM rescaled (§2.4).
 * - A block starting past the end: 4.02 Bad Option.
 * Every 2.05 carries the ETag; Size2 goes on block 0 and whenever the request asked with Size2.
 */
export function serveBlock2(req: CoapMessage, source: ByteSource, options: Block2ServeOptions = {}): ResponseSpec | Promise<ResponseSpec> {
  const maxSzx = options.maxSzx ?? MAX_SZX;
  const rawBlock = getOption(req, OptionNumber.BLOCK2);
  let num = 0;
  let szx = maxSzx;
  if (rawBlock !== undefined) {
    let requested;
    try {
      requested = decodeBlock(rawBlock);
    } catch (e) {
      return badOption((e as Error).message);
    }
    szx = Math.min(requested.szx, maxSzx);
    // §2.4: a larger block the client asked for maps onto several smaller ones; serve the first.
    num = requested.num << (requested.szx - szx);
  } else if (source.size <= blockSize(maxSzx)) {
    return readWhole(req, source);
  }
  const size = blockSize(szx);
  const offset = num * size;
  if (offset > 0 && offset >= source.size) {
    return badOption(`block ${num} (size ${size}) starts past the end of ${source.size} bytes`);
  }
  const more = offset + size < source.size;
  const block = encodeBlock({ num, more, szx });
  return content(source, offset, size, block, num === 0 || getOption(req, OptionNumber.SIZE2) !== undefined);
}

function readWhole(req: CoapMessage, source: ByteSource): ResponseSpec | Promise<ResponseSpec> {
  return content(source, 0, source.size, undefined, getOption(req, OptionNumber.SIZE2) !== undefined);
}

/** The options every response from one source shares, encoded once: a source is immutable. */
interface SourceOptions {
  readonly etag: CoapOption;
  readonly contentFormat: CoapOption | undefined;
  readonly size2: CoapOption;
}

const sourceOptions = new WeakMap<ByteSource, SourceOptions>();

function optionsOf(source: ByteSource): SourceOptions {
  let o = sourceOptions.get(source);
  if (o === undefined) {
    const cf = source.contentFormat;
    o = {
      etag: { number: OptionNumber.ETAG, value: source.etag },
      contentFormat: cf === undefined ? undefined : { number: OptionNumber.CONTENT_FORMAT, value: encodeUint(cf) },
      size2: { number: OptionNumber.SIZE2, value: encodeUint(source.size) },
    };
    sourceOptions.set(source, o);
  }
  return o;
}

/** A 2.05 with ETag, Content-Format, Block2 and Size2 as given (options in ascending order). */
function content(source: ByteSource, offset: number, length: number, block: Uint8Array | undefined, withSize2: boolean): ResponseSpec | Promise<ResponseSpec> {
  const shared = optionsOf(source);
  const opts: CoapOption[] = [shared.etag];
  if (shared.contentFormat !== undefined) opts.push(shared.contentFormat);
  if (block !== undefined) opts.push({ number: OptionNumber.BLOCK2, value: block });
  if (withSize2) opts.push(shared.size2);
  const data = length === 0 ? EMPTY : source.read(offset, length);
  if (data instanceof Promise) return data.then((payload): ResponseSpec => ({ code: Code.CONTENT, options: opts, payload }));
  return { code: Code.CONTENT, options: opts, payload: data };
}

function badOption(reason: string): ResponseSpec {
  // RFC 7252 §5.5.2: a diagnostic payload, UTF-8, for the human reading the log.
  return { code: Code.BAD_OPTION, payload: new TextEncoder().encode(reason) };
}
