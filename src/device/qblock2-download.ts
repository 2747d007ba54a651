/**
 * An image fetched with Q-Block2 (RFC 9177) when the server does it, else
 * Block2 (fetch-body.ts), into the same in-order path to flash as a Block2
 * download (download.ts: the verified writer, a journal record per erase
 * block). Q-Block2 blocks arrive in any order (§4.4); flash is written in
 * order, because `writeImageChunk` erases an erase block on its first write
 * and the journal's resume point is "everything before this block is on
 * flash". A bounded {@link ReorderBuffer} sits between the two.
 *
 * Its bound: the fetch asks for nothing `maxAhead` or more past the lowest
 * missing block, and for no new block while `maxAhead` blocks wait for flash;
 * what was in flight when that gate closed (at most the congestion window,
 * capped here at `maxAhead`) still lands. So at most 3 x maxAhead blocks are
 * held: ahead of a hole, waiting for flash, in flight (the same reasoning as
 * `coapfw get`'s stream output, cli/get-output.ts).
 */
import { BlockBitmap, blockCount } from '../blockwise/bitmap.js';
import { fetchBody, type BodyTarget } from '../blockwise/fetch-body.js';
import type { FetchedBlock } from '../blockwise/fetch.js';
import { ReorderBuffer } from '../blockwise/reorder.js';
import { blockSize } from '../codec/block.js';
import type { CoapOption } from '../codec/message.js';
import type { UpdateSession } from './session.js';

/** Default of `UpdateOptions.maxAhead`: a constrained device's RAM, not a server's. */
export const DEFAULT_MAX_AHEAD = 32;

/** A block as the slot writer takes it: in image order, with what the journal records (a fetched block without Size2). */
export type PlacedBlock = Omit<FetchedBlock, 'total'>;

/** Where an image fetch starts: a resume holds every block before `startBlock` (numbered at `szx`) and must see `etag`. */
export interface StreamFrom {
  readonly startBlock: number;
  readonly szx: number;
  readonly etag: Uint8Array | undefined;
}

/** Whether images are fetched through {@link fetchImageBody} (the update has a stream and Q-Block2 is not turned off). */
export function usesStream(s: UpdateSession): boolean {
  return s.opts.openStream !== undefined && s.opts.qblock2 !== false;
}

/**
 * Fetch image `k` (`size` bytes at `options`) from `from`, handing each block
 * to `place` in image order. Errors of `place` (POWER_CUT, DIGEST_MISMATCH)
 * end the fetch and are thrown as they are; no write is still running when
 * this settles, so a retry never races an old one on flash.
 */
export async function fetchImageBody(
  s: UpdateSession,
  k: number,
  image: { readonly options: readonly CoapOption[]; readonly size: number },
  from: StreamFrom,
  place: (b: PlacedBlock) => Promise<void>,
): Promise<void> {
  const { opts } = s;
  const maxAhead = opts.maxAhead ?? DEFAULT_MAX_AHEAD; // checked by runUpdate
  const start = from.startBlock * blockSize(from.szx);
  // Every block of the body shares its block size and ETag (RFC 9177 §4.4, RFC 7959 §2.4): the latest seen names them.
  let shape = { szx: from.szx, etag: from.etag };
  const buffer: ReorderBuffer = new ReorderBuffer({
    maxBlocks: 3 * maxAhead,
    write: (data): Promise<void> => {
      const offset = start + buffer.written;
      const num = offset / blockSize(shape.szx);
      return place({ num, szx: shape.szx, offset, data, more: offset + data.length < image.size, etag: shape.etag });
    },
  });
  let queued: Promise<void> = Promise.resolve();
  let failed = false;
  const target: BodyTarget = { request: opts.request, runtime: opts.runtime, options: image.options, openStream: opts.openStream };
  try {
    const r = await fetchBody(target, {
      szx: from.szx,
      held: heldBefore(from, image.size),
      etag: from.etag,
      // The endless-data attack: refuse as soon as a block goes past the size the image-match checks state.
      maxSize: image.size,
      qblock2: opts.qblock2,
      maxAhead,
      congestion: { maxWindow: maxAhead, initialWindow: Math.min(10, maxAhead) },
      retry: opts.blockRetry ?? { attempts: 5, baseMs: 1000, maxMs: 30_000 },
      signal: opts.signal,
      responseTimeoutMs: opts.responseTimeoutMs,
      onMode: (mode) => s.emit({ type: 'transfer', image: k, mode }),
      onBlock: (b) => {
        // A held block sent again (a probe at a resume point) is already on flash.
        if (b.offset < start) return;
        shape = { szx: b.szx, etag: b.etag ?? shape.etag };
        queued = buffer.push(b.offset - start, b.data);
        // After a failed write every later push fails with it: the fetch hears of it once.
        return queued.catch((e: unknown) => {
          if (failed) return;
          failed = true;
          throw e;
        });
      },
    });
    await buffer.finish(Math.max(0, r.size - start));
  } catch (e) {
    // Let the write in progress land (or fail) before the caller moves on.
    await queued.catch(() => undefined);
    throw e;
  }
}

/** The blocks a resume already holds: every one before `startBlock`; undefined at a fresh start. */
function heldBefore(from: StreamFrom, size: number): BlockBitmap | undefined {
  if (from.startBlock === 0) return undefined;
  const held = new BlockBitmap(blockCount(size, blockSize(from.szx)));
  for (let n = 0; n < Math.min(from.startBlock, held.total); n++) held.set(n);
  return held;
}
