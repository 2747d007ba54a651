/**
 * Per-block authentication of an image: a digest of every block, bound by a
 * Merkle tree whose root goes into the signed manifest, so that a device can
 * check each block before it writes it to flash.
 *
 * Why a Merkle tree and not a hash chain (h_i = H(block_i || h_i+1)):
 * - Q-Block2 (RFC 9177 §4.4) delivers blocks out of order and asks for the
 *   missing ones later. A chain can only check block i after block i-1, so a
 *   device would have to buffer everything that arrived early; with a tree
 *   every block is checked against its own leaf, in any order.
 * - Resume after a power cut at any block: a chain needs the chain value at
 *   the resume point (and a resume point that is a chain position); a tree
 *   needs nothing but the leaves, which are content-addressed and can be
 *   fetched (and checked) again at any time.
 * - RAM: checking a leaf page against the top list, and the top list against
 *   the root, takes one hash state plus ceil(log2 n) + 1 stacked hashes
 *   (`MerkleRootBuilder`); checking a block against its leaf one hash state.
 *   A chain needs 32 bytes, but only in order.
 * - Proof size: the digest list costs 32 bytes per block plus 32 per page,
 *   fetched once (3.2 % of the image at 1024-byte blocks), instead of a
 *   ceil(log2 n)-hash proof per block; a chain costs the same 32 bytes per
 *   block, but in order only.
 * - The digests themselves are fetched block-wise: the list is cut into
 *   pages of `pageLeaves` leaves (one CoAP block of the list by default),
 *   each an aligned subtree of the same tree. The roots of the pages (the
 *   "top list", 32 bytes per page: 64 bytes for a 60 KiB image) are checked
 *   against the signed root first; then each page is checked against its top
 *   entry when it arrives, in any order, so a tampered digest list is caught
 *   at the page that was tampered with, before any image byte is written.
 *
 * Tree: RFC 9162 §2.1.1 (Certificate Transparency 2.0) with SHA-256: leaf =
 * H(0x00 || block), node = H(0x01 || left || right), the split at the largest
 * power of two below n; the domain separation stops a node from passing as a
 * leaf. Because pages hold a power of two of leaves, every split above page
 * level falls on a page boundary, so the Merkle Tree Hash over the page roots
 * (taken as nodes) is the Merkle Tree Hash over the leaves.
 *
 * Digest resource (served content-addressed, `/fw/sha256/<sha256 of it>`):
 * the n leaves, 32 bytes each, in block order (leaf i at byte 32 i, so page j
 * is one aligned CoAP block of `32 * pageLeaves` bytes), then the m page roots
 * (top list), 32 bytes each, at byte 32 n. An empty image has n = m = 0, an
 * empty resource and the root SHA-256("") (RFC 9162: MTH({}) = HASH()).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { CoapfwError } from '../errors.js';
import { ALG } from './constants.js';
import type { BlockDigestsInfo } from './types.js';

/** Bytes of one leaf or node (SHA-256). */
export const DIGEST_BYTES = 32;
/** Largest block size we accept: 1 MiB. */
export const MAX_BLOCK_SIZE = 1 << 20;
/** Most leaves per page: 65536 (2 MiB of digests). */
export const MAX_PAGE_LEAVES = 1 << 16;

const LEAF_PREFIX = new Uint8Array([0]);
const NODE_PREFIX = new Uint8Array([1]);

/** RFC 9162 §2.1.1: the leaf of a block, SHA-256(0x00 || block). */
export function leafHash(block: Uint8Array): Uint8Array {
  return sha256.create().update(LEAF_PREFIX).update(block).digest();
}

/** RFC 9162 §2.1.1: an interior node, SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return sha256.create().update(NODE_PREFIX).update(left).update(right).digest();
}

/**
 * The Merkle Tree Hash of a sequence of nodes pushed in order, with
 * ceil(log2 n) + 1 hashes of memory: the roots of the perfect subtrees seen
 * so far are stacked, equal-sized neighbours merged at once, and the stack is
 * folded right to left at the end, which is RFC 9162's split at the largest
 * power of two.
 */
export class MerkleRootBuilder {
  private readonly stack: Uint8Array[] = [];
  private readonly sizes: number[] = [];
  private count = 0;

  /** Add the next node (a leaf hash, or the root of an aligned subtree of `weight` leaves). */
  push(node: Uint8Array, weight = 1): void {
    let n = node;
    let w = weight;
    while (this.sizes.length > 0 && this.sizes[this.sizes.length - 1] === w) {
      n = nodeHash(this.stack.pop()!, n);
      w += this.sizes.pop()!;
    }
    this.stack.push(n);
    this.sizes.push(w);
    this.count++;
  }

  /** Nodes pushed so far. */
  get length(): number {
    return this.count;
  }

  /** Hashes held: at most ceil(log2 n) + 1. */
  get depth(): number {
    return this.stack.length;
  }

  /** The root of everything pushed; SHA-256("") when nothing was. */
  root(): Uint8Array {
    if (this.stack.length === 0) return sha256(new Uint8Array(0));
    let acc = this.stack[this.stack.length - 1]!;
    for (let i = this.stack.length - 2; i >= 0; i--) acc = nodeHash(this.stack[i]!, acc);
    return acc;
  }
}

/** Where things are in the digest resource of an image. */
export interface DigestsLayout {
  /** Blocks of the image (= leaves). */
  readonly blocks: number;
  /** Pages of the digest list (= entries of the top list). */
  readonly pages: number;
  /** Bytes of a full page: 32 * pageLeaves. */
  readonly pageBytes: number;
  /** Offset of the top list in the resource: 32 * blocks. */
  readonly topOffset: number;
  /** Size of the resource: 32 * (blocks + pages). */
  readonly size: number;
}

function isPow2(n: number): boolean {
  return Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Validate the numbers of a `BlockDigestsInfo` (throws INVALID_ARGUMENT, labelled `what`). */
export function checkBlockDigestsInfo(info: BlockDigestsInfo, what = 'block digests'): void {
  const bad = (m: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `${what}: ${m}`);
  if (info.alg !== ALG.sha256) throw bad(`algorithm ${info.alg}: only SHA-256 (-16) is supported`);
  if (!isPow2(info.blockSize) || info.blockSize < 16 || info.blockSize > MAX_BLOCK_SIZE) {
    throw bad(`blockSize must be a power of two 16..${MAX_BLOCK_SIZE}, got ${info.blockSize}`);
  }
  if (!isPow2(info.pageLeaves) || info.pageLeaves > MAX_PAGE_LEAVES) {
    throw bad(`pageLeaves must be a power of two 1..${MAX_PAGE_LEAVES}, got ${info.pageLeaves}`);
  }
  if (!Number.isSafeInteger(info.imageSize) || info.imageSize < 0) throw bad(`imageSize must be an unsigned integer, got ${info.imageSize}`);
  if (!(info.root instanceof Uint8Array) || info.root.length !== DIGEST_BYTES) throw bad('root must be 32 bytes');
}

/** Layout of the digest resource for an image of `imageSize` bytes. */
export function digestsLayout(info: Pick<BlockDigestsInfo, 'blockSize' | 'pageLeaves' | 'imageSize'>): DigestsLayout {
  const blocks = Math.ceil(info.imageSize / info.blockSize);
  const pages = Math.ceil(blocks / info.pageLeaves);
  return { blocks, pages, pageBytes: DIGEST_BYTES * info.pageLeaves, topOffset: DIGEST_BYTES * blocks, size: DIGEST_BYTES * (blocks + pages) };
}

/** The root of page `j` of a leaf list (`leaves` holds exactly that page's leaves). */
export function pageRoot(leaves: Uint8Array): Uint8Array {
  const b = new MerkleRootBuilder();
  for (let o = 0; o < leaves.length; o += DIGEST_BYTES) b.push(leaves.subarray(o, o + DIGEST_BYTES));
  return b.root();
}

/** The Merkle root over a top list (page roots, 32 bytes each, pages of `pageLeaves` leaves). */
export function topListRoot(top: Uint8Array, pageLeaves: number): Uint8Array {
  const b = new MerkleRootBuilder();
  // A page root is the root of an aligned subtree of pageLeaves leaves; only
  // the last page may be lighter, and it is never merged before the final fold.
  for (let o = 0; o < top.length; o += DIGEST_BYTES) b.push(top.subarray(o, o + DIGEST_BYTES), pageLeaves);
  return b.root();
}

/** Options of `buildBlockDigests`. */
export interface BuildBlockDigestsOptions {
  /** Bytes per block: a power of two 16..1 MiB. Use the device's CoAP block size (1024 = SZX 6). */
  readonly blockSize: number;
  /** Leaves per page; default max(1, blockSize / 32), so a page is one block of the list. */
  readonly pageLeaves?: number;
  /** Where the digest resource will be served, recorded in the manifest parameter. */
  readonly uri?: string;
}

/** What the publisher computes for an image: the manifest's parameter and the digest resource. */
export interface BlockDigests {
  readonly info: BlockDigestsInfo;
  /** The digest resource: leaves, then the top list. */
  readonly resource: Uint8Array;
}

/**
 * Compute every block's leaf, the page roots and the Merkle root of `image`.
 *
 * @example
 * const { info, resource } = buildBlockDigests(image, { blockSize: 1024 });
 * // serve `resource` at /fw/sha256/<hex of sha256(resource)>, put `info` in the manifest
 */
export function buildBlockDigests(image: Uint8Array, opts: BuildBlockDigestsOptions): BlockDigests {
  if (!(image instanceof Uint8Array)) throw new CoapfwError('INVALID_ARGUMENT', 'buildBlockDigests: image must be a Uint8Array');
  const pageLeaves = opts.pageLeaves ?? Math.max(1, Math.floor(opts.blockSize / DIGEST_BYTES));
  const probe: BlockDigestsInfo = { alg: ALG.sha256, blockSize: opts.blockSize, pageLeaves, imageSize: image.length, root: new Uint8Array(DIGEST_BYTES) };
  checkBlockDigestsInfo(probe, 'buildBlockDigests');
  const layout = digestsLayout(probe);
  const resource = new Uint8Array(layout.size);
  for (let i = 0; i < layout.blocks; i++) {
    resource.set(leafHash(image.subarray(i * opts.blockSize, (i + 1) * opts.blockSize)), i * DIGEST_BYTES);
  }
  for (let j = 0; j < layout.pages; j++) {
    const page = resource.subarray(j * layout.pageBytes, Math.min((j + 1) * layout.pageBytes, layout.topOffset));
    resource.set(pageRoot(page), layout.topOffset + j * DIGEST_BYTES);
  }
  const root = topListRoot(resource.subarray(layout.topOffset), pageLeaves);
  const info: BlockDigestsInfo = opts.uri === undefined ? { ...probe, root } : { ...probe, root, uri: opts.uri };
  return { info, resource };
}
