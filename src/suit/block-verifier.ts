/**
 * The device side of per-block authentication (src/suit/block-digests.ts):
 * given the signed root, block size and image size, and the digest resource
 * as it is fetched, check every image block before it is written.
 *
 * Order of work on a device:
 * 1. `topRange()` of the digest resource is fetched and `acceptTopList()`
 *    checks it against the root (m page roots, 32 bytes each).
 * 2. For a block i whose page is not held yet, `pageRange(pageOf(i))` is
 *    fetched and `acceptPage()` checks it against its top-list entry (any
 *    order; a bad page is refused with `block` = the page number).
 * 3. `checkBlock(i, data)` before writing block i: one hash. A bad block is
 *    refused with DIGEST_MISMATCH and `block` = i, so the first bad block of
 *    an in-order stream is the one reported.
 * Pages held are bounded (`maxPages`); the oldest is dropped first and can be
 * fetched again, since the resource is immutable.
 */
import { CoapfwError } from '../errors.js';
import { DIGEST_BYTES, checkBlockDigestsInfo, digestsLayout, leafHash, pageRoot, topListRoot, type DigestsLayout } from './block-digests.js';
import type { BlockDigestsInfo } from './types.js';
import { bytesEqual } from './values.js';

/** Options of `BlockVerifier`. */
export interface BlockVerifierOptions {
  /** Most verified leaf pages held at once (each 32 * pageLeaves bytes); default 64. */
  readonly maxPages?: number;
}

/** A byte range of the digest resource. */
export interface ByteRange {
  readonly offset: number;
  readonly length: number;
}

/** Checks image blocks against a signed Merkle root, in any order. */
export class BlockVerifier {
  readonly layout: DigestsLayout;
  private top: Uint8Array | undefined;
  private readonly pages = new Map<number, Uint8Array>();
  private readonly maxPages: number;

  constructor(readonly info: BlockDigestsInfo, opts: BlockVerifierOptions = {}) {
    checkBlockDigestsInfo(info, 'BlockVerifier');
    this.maxPages = opts.maxPages ?? 64;
    if (!Number.isSafeInteger(this.maxPages) || this.maxPages < 1) {
      throw new CoapfwError('INVALID_ARGUMENT', `BlockVerifier: maxPages must be an integer >= 1, got ${opts.maxPages}`);
    }
    this.layout = digestsLayout(info);
  }

  /** Where the top list is in the digest resource. */
  topRange(): ByteRange {
    return { offset: this.layout.topOffset, length: DIGEST_BYTES * this.layout.pages };
  }

  /** Where page `j` is in the digest resource (the last page may be short). */
  pageRange(j: number): ByteRange {
    this.index(j, this.layout.pages, 'page');
    const offset = j * this.layout.pageBytes;
    return { offset, length: Math.min(this.layout.pageBytes, this.layout.topOffset - offset) };
  }

  /** The page holding the leaf of block `i`. */
  pageOf(i: number): number {
    this.index(i, this.layout.blocks, 'block');
    return Math.floor(i / this.info.pageLeaves);
  }

  /** Whether the top list has been accepted. */
  get hasTopList(): boolean {
    return this.top !== undefined;
  }

  /** Whether page `j` is held (verified). */
  hasPage(j: number): boolean {
    return this.pages.has(j);
  }

  /** Forget page `j` (to free memory; it can be accepted again). */
  releasePage(j: number): void {
    this.pages.delete(j);
  }

  /** Check the top list against the root. Throws DIGEST_MISMATCH (no `block`: the list is one unit). */
  acceptTopList(bytes: Uint8Array): void {
    const want = this.topRange().length;
    if (bytes.length !== want) {
      throw new CoapfwError('DIGEST_MISMATCH', `block digests: the top list is ${bytes.length} bytes, expected ${want}`);
    }
    if (!bytesEqual(topListRoot(bytes, this.info.pageLeaves), this.info.root)) {
      throw new CoapfwError('DIGEST_MISMATCH', 'block digests: the top list does not hash to the manifest\'s root');
    }
    this.top = bytes.slice();
  }

  /**
   * Check page `j` of the leaf list against its top-list entry and hold it.
   * Throws BLOCK_DIGEST_UNAVAILABLE before the top list, DIGEST_MISMATCH
   * with `block` = j for a page that is not the one signed.
   */
  acceptPage(j: number, bytes: Uint8Array): void {
    const r = this.pageRange(j);
    if (!this.top) throw new CoapfwError('BLOCK_DIGEST_UNAVAILABLE', 'block digests: accept the top list before any page', { block: j });
    if (bytes.length !== r.length) {
      throw new CoapfwError('DIGEST_MISMATCH', `block digests: page ${j} is ${bytes.length} bytes, expected ${r.length}`, { block: j });
    }
    if (!bytesEqual(pageRoot(bytes), this.top.subarray(j * DIGEST_BYTES, (j + 1) * DIGEST_BYTES))) {
      throw new CoapfwError('DIGEST_MISMATCH', `block digests: page ${j} does not match the signed tree`, { block: j });
    }
    this.pages.delete(j);
    if (this.pages.size >= this.maxPages) this.pages.delete(this.pages.keys().next().value!);
    this.pages.set(j, bytes.slice());
  }

  /**
   * Check data block `i` before it is written. Throws DIGEST_MISMATCH with
   * `block` = i (wrong length or wrong bytes), BLOCK_DIGEST_UNAVAILABLE with
   * `block` = i when its page is not held (fetch `pageRange(pageOf(i))`).
   */
  checkBlock(i: number, data: Uint8Array): void {
    if (Number.isSafeInteger(i) && i >= this.layout.blocks) {
      throw new CoapfwError('DIGEST_MISMATCH', `block ${i}: past the end of the ${this.info.imageSize}-byte image`, { block: i });
    }
    const j = this.pageOf(i);
    const page = this.pages.get(j);
    if (!page) throw new CoapfwError('BLOCK_DIGEST_UNAVAILABLE', `block digests: page ${j} (for block ${i}) is not held`, { block: i });
    const want = Math.min(this.info.blockSize, this.info.imageSize - i * this.info.blockSize);
    if (data.length !== want) {
      throw new CoapfwError('DIGEST_MISMATCH', `block ${i}: ${data.length} bytes, expected ${want}`, { block: i });
    }
    const k = (i - j * this.info.pageLeaves) * DIGEST_BYTES;
    if (!bytesEqual(leafHash(data), page.subarray(k, k + DIGEST_BYTES))) {
      throw new CoapfwError('DIGEST_MISMATCH', `block ${i}: digest does not match the signed block digests`, { block: i });
    }
  }

  /** Accept a whole digest resource: top list, then every page in order (first bad page reported). */
  acceptResource(resource: Uint8Array): void {
    if (resource.length !== this.layout.size) {
      throw new CoapfwError('DIGEST_MISMATCH', `block digests: resource is ${resource.length} bytes, expected ${this.layout.size}`);
    }
    const t = this.topRange();
    this.acceptTopList(resource.subarray(t.offset, t.offset + t.length));
    for (let j = 0; j < this.layout.pages; j++) {
      const r = this.pageRange(j);
      this.acceptPage(j, resource.subarray(r.offset, r.offset + r.length));
    }
  }

  private index(i: number, count: number, what: string): void {
    if (!Number.isSafeInteger(i) || i < 0 || i >= count) {
      throw new CoapfwError('INVALID_ARGUMENT', `block digests: ${what} ${i} out of range 0..${count - 1}`);
    }
  }
}
