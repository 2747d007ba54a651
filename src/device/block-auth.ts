/**
 * Per-block authentication on the device (issue 13): the digest resource of
 * an image (src/suit/block-digests.ts: leaves, then the top list) fetched
 * block-wise from the manifest's server, checked against the signed Merkle
 * root, and used to check every image block before it reaches flash.
 *
 * The digest resource is content-addressed and immutable, so any part of it
 * can be fetched (again) at any time: the top list once (or from the
 * single-bank recovery area, where it is kept), each page of leaves when the
 * first block it covers arrives, in any order (Q-Block2 included). At most
 * `maxPages` pages are held; a page dropped for memory is fetched again when
 * needed.
 */
import { fetchBlocks } from '../blockwise/fetch.js';
import { blockSize } from '../codec/block.js';
import type { CoapOption } from '../codec/message.js';
import { CoapfwError } from '../errors.js';
import { BlockVerifier, type ByteRange } from '../suit/block-verifier.js';
import { digestsLayout } from '../suit/block-digests.js';
import type { BlockDigestsInfo } from '../suit/types.js';
import { imageRequestOptions } from './image-uri.js';
import type { UpdateOptions } from './states.js';

/** Limits of per-block authentication on the device. */
export interface BlockAuthOptions {
  /** Largest authenticated block accepted, in bytes (one is held in RAM while it is assembled). Default 4096. */
  readonly maxBlockSize?: number;
  /** Verified digest pages held at once (each 32 * pageLeaves bytes). Default 4. */
  readonly maxPages?: number;
}

const DEFAULT_MAX_BLOCK = 4096;
const DEFAULT_MAX_PAGES = 4;

/** Reads a byte range of a resource on the update server. */
export type RangeFetcher = (range: ByteRange) => Promise<Uint8Array>;

/**
 * A byte range of the resource at `uri` (relative to the manifest), fetched
 * block-wise from the block holding its first byte; at most `maxSize` bytes
 * of the resource are accepted (the endless-data attack).
 */
export function uriFetcher(opts: UpdateOptions, uri: string, maxSize: number): RangeFetcher {
  let options: CoapOption[];
  try {
    options = imageRequestOptions(opts.manifestUri, uri);
  } catch (e) {
    throw new CoapfwError('SUIT_UNSUPPORTED', `manifest: cannot fetch ${JSON.stringify(uri)} (${(e as Error).message})`, { cause: e });
  }
  return rangeFetcher(opts, options, maxSize);
}

/** A byte range of the resource named by `options` on the manifest's server (see {@link uriFetcher}). */
export function rangeFetcher(opts: UpdateOptions, options: readonly CoapOption[], maxSize: number): RangeFetcher {
  return async ({ offset, length }) => {
    const out = new Uint8Array(length);
    if (length === 0) return out;
    const szx = opts.szx ?? 6;
    const blocks = fetchBlocks(opts.request, {
      runtime: opts.runtime,
      options,
      startBlock: Math.floor(offset / blockSize(szx)),
      szx,
      maxSize,
      retry: opts.blockRetry ?? { attempts: 5, baseMs: 1000, maxMs: 30_000 },
      signal: opts.signal,
      responseTimeoutMs: opts.responseTimeoutMs,
    });
    let got = 0;
    for await (const b of blocks) {
      const from = Math.max(offset, b.offset);
      const to = Math.min(offset + length, b.offset + b.data.length);
      if (to > from) out.set(b.data.subarray(from - b.offset, to - b.offset), from - offset);
      got = Math.max(got, to - offset);
      if (got >= length) break;
    }
    if (got < length) throw new CoapfwError('DIGEST_MISMATCH', `fetch: the resource ends before byte ${offset + length}`);
    return out;
  };
}

/** The verified digests of one image, fetching pages as blocks need them. */
export class DigestSource {
  /** Pages fetched (each one CoAP block of the digest resource by default). */
  pagesFetched = 0;

  private constructor(
    private readonly verifier: BlockVerifier,
    private readonly fetch: RangeFetcher,
    /** The accepted top list (kept for the single-bank recovery area). */
    readonly topList: Uint8Array,
  ) {}

  /**
   * Check the top list (`topList` when the device kept one, else fetched)
   * against the signed root. DIGEST_MISMATCH when it does not hash to it.
   */
  static async open(info: BlockDigestsInfo, fetch: RangeFetcher, opts: BlockAuthOptions = {}, topList?: Uint8Array): Promise<DigestSource> {
    const verifier = new BlockVerifier(info, { maxPages: opts.maxPages ?? DEFAULT_MAX_PAGES });
    const top = topList ?? (await fetch(verifier.topRange()));
    verifier.acceptTopList(top);
    return new DigestSource(verifier, fetch, top.slice());
  }

  /** The block size the digests are computed over. */
  get blockSize(): number {
    return this.verifier.info.blockSize;
  }

  /**
   * Check block `i` (`data`: all of it) against its leaf, fetching and
   * checking the page holding it first when it is not held. Throws
   * DIGEST_MISMATCH with `block` = i for a bad block (or = the page number,
   * with the page named in the message, for a page that is not the signed one).
   */
  async check(i: number, data: Uint8Array): Promise<void> {
    const j = this.verifier.pageOf(i);
    if (!this.verifier.hasPage(j)) {
      this.verifier.acceptPage(j, await this.fetch(this.verifier.pageRange(j)));
      this.pagesFetched++;
    }
    this.verifier.checkBlock(i, data);
  }
}

/**
 * The digest source of `img`'s block digests, or undefined when it has none
 * (only the whole-image digest is checked then). The digests must say where
 * they are served (SUIT_UNSUPPORTED otherwise) and use blocks no larger than
 * `maxBlockSize` that the chip can program on their own.
 */
export async function openDigests(opts: UpdateOptions, info: BlockDigestsInfo | undefined, writeAlignment: number, topList?: Uint8Array): Promise<DigestSource | undefined> {
  if (info === undefined) return undefined;
  checkDigestsUsable(opts, info, writeAlignment);
  return DigestSource.open(info, uriFetcher(opts, info.uri!, digestsLayout(info).size), opts.blockAuth, topList);
}

/** Throw SUIT_UNSUPPORTED unless this device can use `info` (see {@link openDigests}). */
export function checkDigestsUsable(opts: Pick<UpdateOptions, 'blockAuth'>, info: BlockDigestsInfo, writeAlignment: number): void {
  const max = opts.blockAuth?.maxBlockSize ?? DEFAULT_MAX_BLOCK;
  if (!Number.isSafeInteger(max) || max < 16) throw new CoapfwError('INVALID_ARGUMENT', `runUpdate: blockAuth.maxBlockSize must be an integer >= 16, got ${max}`);
  if (info.uri === undefined) throw new CoapfwError('SUIT_UNSUPPORTED', 'manifest: the block digests do not say where they are served (no uri)');
  if (info.blockSize > max) throw new CoapfwError('SUIT_UNSUPPORTED', `manifest: block digests over ${info.blockSize}-byte blocks; this device takes at most ${max}`);
  if (info.blockSize % writeAlignment !== 0) throw new CoapfwError('SUIT_UNSUPPORTED', `manifest: ${info.blockSize}-byte authenticated blocks cannot be programmed in ${writeAlignment}-byte units`);
}
