/**
 * The block-wise image cache, keyed by content address (`/fw/sha256/<hex>`).
 *
 * Each image is fetched upstream once (one {@link Fill}, however many
 * devices ask), kept on disk, and served statelessly block by block with
 * {@link serveBlock2}: a block not fetched yet is answered 5.03 with a
 * Max-Age saying when it will likely be there (RFC 7252 §5.9.3.4), which our
 * fetcher waits out with jitter. An image whose bytes do not hash to their
 * address is never completed, never moved in, counted and remembered for
 * `negativeTtlMs` (5.02 Bad Gateway meanwhile).
 *
 * On disk: `objects/<hex>` holds complete, verified images only; they appear
 * by rename after the data was synced, and are hashed again at every start
 * (a file whose bytes are not its name is deleted and counted), so a crash
 * or a torn write can never make a partial image look complete.
 * `partial/<hex>.part` holds fills in progress and is emptied at start.
 * Within `maxBytes` (images being filled count with their full size): the
 * least recently served images go first.
 */
import { mkdir, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeBlock, MAX_SZX } from '../codec/block.js';
import type { Link } from '../codec/link-format.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, ContentFormat, OptionNumber } from '../codec/numbers.js';
import { getOption, uintOption } from '../codec/options.js';
import type { Runtime } from '../core/runtime.js';
import { serveBlock2 } from '../blockwise/serve.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import { FileRepository } from '../server/files.js';
import { errorResponse } from '../server/responses.js';
import { CoapfwError } from '../errors.js';
import { Fill, type BlockFetcher, type FillFailure, type Reservation, type TransferMode } from './fill.js';
import { syncDir } from './journal.js';

/** Options of {@link BlockCache.open}. */
export interface BlockCacheOptions {
  readonly dir: string;
  readonly runtime: Runtime;
  /** Bytes of images kept on disk, images being filled included. Default 1 GiB. */
  readonly maxBytes?: number;
  /** Largest block size served (SZX 0..6). Default 6. */
  readonly maxSzx?: number;
  /** Images fetched upstream at once; more are answered 5.03. Default 8. */
  readonly maxFills?: number;
  /** Serve blocks of an image before all of it verified (never its last block). Default true. */
  readonly serveWhileFilling?: boolean;
  /** How long a failed image is answered from memory (no new upstream fetch). Default 10,000 ms. */
  readonly negativeTtlMs?: number;
  /**
   * Called for every image that verified, before it is served whole: throw to
   * refuse it (the gateway checks SUIT envelopes here). Resolves with true if
   * the image must be held whole (no block before this check) when the first
   * bytes show what it is.
   */
  readonly check?: ImageCheck;
  readonly onEvent?: (e: CacheEvent) => void;
}

/** Decides about images by their bytes (the gateway's envelope verification). */
export interface ImageCheck {
  /** True when an image starting with `head` must be held whole until {@link ImageCheck.verify} passed. */
  holdWhole(head: Uint8Array): boolean;
  /** Throw to refuse the complete, digest-checked image. */
  verify(bytes: Uint8Array, hex: string): void | Promise<void>;
}

/** What the cache did. */
export type CacheEvent =
  | { readonly type: 'fill-started'; readonly hex: string }
  | { readonly type: 'fill-complete'; readonly hex: string; readonly size: number; readonly mode?: TransferMode }
  | { readonly type: 'fill-stalled'; readonly hex: string; readonly error: unknown }
  | { readonly type: 'fill-failed'; readonly hex: string; readonly reason: FillFailure; readonly error: unknown }
  | { readonly type: 'evicted'; readonly hex: string; readonly size: number }
  | { readonly type: 'damaged'; readonly file: string };

/** Counters. */
export interface BlockCacheStats {
  /** Requests answered from a complete image. */
  hits: number;
  /** Requests answered from an image still filling. */
  fillingHits: number;
  /** Requests answered 5.03: the block is not here yet. */
  notYet: number;
  fills: number;
  completed: number;
  /** Images whose upstream bytes did not match their address. */
  mismatches: number;
  /** Images whose upstream ETag changed during the fetch. */
  etagChanges: number;
  /** Images refused by the check (an envelope that failed verification). */
  refused: number;
  failed: number;
  evicted: number;
  /** Files found at start that were not what their name says. */
  damaged: number;
  /** Partial files thrown away at start. */
  discardedPartials: number;
  /** Bytes of image data received from upstream. */
  upstreamBytes: number;
  /** Images completed whose last upstream run was Q-Block2 (RFC 9177). */
  qblock2Fills: number;
  /** Images completed whose last upstream run was Block2 (RFC 7959): the upstream does not do Q-Block2. */
  block2Fills: number;
}

const HEX = /^[0-9a-f]{64}$/;

/** The on-disk cache of content-addressed images. */
export class BlockCache {
  readonly stats: BlockCacheStats = {
    hits: 0, fillingHits: 0, notYet: 0, fills: 0, completed: 0, mismatches: 0, etagChanges: 0, refused: 0, failed: 0, evicted: 0, damaged: 0, discardedPartials: 0, upstreamBytes: 0, qblock2Fills: 0, block2Fills: 0,
  };
  /** Complete images, least recently served first. */
  private readonly lru = new Map<string, number>();
  private readonly fills = new Map<string, Fill>();
  private readonly failures = new Map<string, { reason: FillFailure; until: number }>();
  /** Fills whose first bytes the check wants to see whole (envelopes). */
  private readonly toCheck = new Set<Fill>();
  private objectBytes = 0;
  private readonly maxBytes: number;
  private readonly maxSzx: number;

  private constructor(
    private readonly repo: FileRepository,
    private readonly options: BlockCacheOptions,
  ) {
    this.maxBytes = options.maxBytes ?? 1 << 30;
    this.maxSzx = options.maxSzx ?? MAX_SZX;
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 1) throw new CoapfwError('INVALID_ARGUMENT', `gateway cache: maxBytes must be an integer >= 1, got ${this.maxBytes}`);
  }

  /** Open the cache in `dir`: partial files removed, every object hashed again. */
  static async open(options: BlockCacheOptions): Promise<BlockCache> {
    const objects = join(options.dir, 'objects');
    const partial = join(options.dir, 'partial');
    await mkdir(objects, { recursive: true });
    await mkdir(partial, { recursive: true });
    let discarded = 0;
    for (const name of await readdir(partial)) {
      await unlink(join(partial, name)).catch(() => undefined);
      discarded++;
    }
    const repo = await FileRepository.open(objects, { maxFiles: 1_000_000, maxFileSize: Number.MAX_SAFE_INTEGER, includeHidden: true, includeTemporary: true });
    const cache = new BlockCache(repo, options);
    cache.stats.discardedPartials = discarded;
    await cache.checkObjects();
    return cache;
  }

  /** Complete images held and their bytes. */
  get objects(): { readonly count: number; readonly bytes: number } {
    return { count: this.lru.size, bytes: this.objectBytes };
  }

  /** Whether the complete image `hex` is here. */
  has(hex: string): boolean {
    return this.repo.bySha256(hex) !== undefined;
  }

  /** Images being fetched now. */
  get filling(): number {
    return this.fills.size;
  }

  /** `/.well-known/core` links of the complete images (RFC 6690). */
  links(): Link[] {
    return this.repo.list().map((f) => ({ target: `/fw/sha256/${f.sha256}`, attributes: { rt: 'firmware', ct: String(ContentFormat.OCTET_STREAM), sz: String(f.size) } }));
  }

  /**
   * Answer a GET for image `hex` (lower-case hex): from disk, from its fill,
   * or by starting a fill with `fetch` (the blocks from the upstream).
   */
  serve(req: CoapMessage, hex: string, fetch: BlockFetcher): ResponseSpec | Promise<ResponseSpec> {
    if (!HEX.test(hex)) return errorResponse(Code.BAD_REQUEST, 'content address: 64 lower-case hex digits');
    const entry = this.repo.bySha256(hex);
    if (entry !== undefined) {
      this.touch(hex);
      this.stats.hits++;
      return serveBlock2(req, entry, { maxSzx: this.maxSzx });
    }
    const failed = this.failures.get(hex);
    if (failed !== undefined && failed.until > this.options.runtime.now()) return failureResponse(failed.reason);
    let fill = this.fills.get(hex);
    if (fill === undefined) {
      if (this.fills.size >= (this.options.maxFills ?? 8)) return retryLater(1, 'gateway: too many images being fetched; try again');
      fill = this.startFill(hex, fetch);
    } else if (fill.state === 'stalled' && !fill.active && this.options.runtime.now() >= fill.retryAt) {
      this.run(fill);
    }
    if (fill.state === 'failed') return failureResponse(fill.failure?.reason ?? 'upstream');
    const range = requestedRange(req, fill.size, this.maxSzx);
    if (range !== undefined && fill.servable(range.offset, range.end)) {
      this.stats.fillingHits++;
      return serveBlock2(req, fill.source, { maxSzx: this.maxSzx });
    }
    this.stats.notYet++;
    return retryLater(fill.waitSeconds(range?.end ?? 0), `gateway: block not fetched yet (${fill.contiguous} of ${fill.size ?? '?'} bytes)`);
  }

  /** Stop fills and close files (partial files stay for the next start to remove). */
  async close(): Promise<void> {
    await Promise.all([...this.fills.values()].map((f) => f.dispose(true)));
    this.fills.clear();
    await this.repo.close();
  }

  private startFill(hex: string, fetch: BlockFetcher): Fill {
    const check = this.options.check;
    const fill = new Fill({
      hex,
      partialPath: join(this.options.dir, 'partial', `${hex}.part`),
      runtime: this.options.runtime,
      serveWhileFilling: this.options.serveWhileFilling,
      reserve: (size) => this.reserve(size, hex),
      fetch: (from, onBlock) =>
        fetch(from, async (b) => {
          if (b.offset === 0 && check?.holdWhole(b.data)) {
            fill.holdWhole = true;
            this.toCheck.add(fill);
          }
          this.stats.upstreamBytes += b.data.length;
          await onBlock(b);
        }),
    });
    this.fills.set(hex, fill);
    this.stats.fills++;
    this.options.onEvent?.({ type: 'fill-started', hex });
    this.run(fill);
    return fill;
  }

  private run(fill: Fill): void {
    fill
      .run()
      .then(() => this.settle(fill))
      .catch((e: unknown) => fill.fail('io', e).then(() => this.settle(fill)));
  }

  /** After a run: move a verified image in, forget a failed one, keep a stalled one. */
  private async settle(fill: Fill): Promise<void> {
    const hex = this.hexOf(fill);
    if (fill.state === 'stalled') return this.options.onEvent?.({ type: 'fill-stalled', hex, error: fill.failure?.error });
    if (fill.state === 'verified' && this.toCheck.delete(fill)) {
      try {
        const bytes = await fill.source.read(0, fill.size!);
        await this.options.check?.verify(bytes, hex);
      } catch (e) {
        await fill.fail('refused', e);
      }
    }
    if (fill.state === 'verified') return this.moveIn(fill, hex);
    this.fills.delete(hex);
    this.toCheck.delete(fill);
    const reason = fill.failure?.reason ?? 'upstream';
    this.stats.failed++;
    if (reason === 'digest') this.stats.mismatches++;
    if (reason === 'etag') this.stats.etagChanges++;
    if (reason === 'refused') this.stats.refused++;
    this.failures.set(hex, { reason, until: this.options.runtime.now() + (this.options.negativeTtlMs ?? 10_000) });
    if (this.failures.size > 1024) this.failures.delete(this.failures.keys().next().value!);
    this.options.onEvent?.({ type: 'fill-failed', hex, reason, error: fill.failure?.error });
  }

  private async moveIn(fill: Fill, hex: string): Promise<void> {
    const objects = join(this.options.dir, 'objects');
    try {
      await rename(join(this.options.dir, 'partial', `${hex}.part`), join(objects, hex));
      await syncDir(objects);
      await this.repo.refresh();
    } catch (e) {
      await fill.fail('io', e);
      return this.settle(fill);
    }
    // Recorded before anything else is awaited: the image is served from objects/ from now on (has() is true),
    // and its place in the LRU and the counters must be there with it.
    this.fills.delete(hex);
    const size = fill.size!;
    this.lru.set(hex, size);
    this.objectBytes += size;
    this.stats.completed++;
    if (fill.mode === 'qblock2') this.stats.qblock2Fills++;
    if (fill.mode === 'block2') this.stats.block2Fills++;
    await fill.dispose(true);
    this.options.onEvent?.({ type: 'fill-complete', hex, size, ...(fill.mode !== undefined ? { mode: fill.mode } : {}) });
  }

  /** Room for a new image of `size` bytes: the least recently served images go until it fits. */
  private async reserve(size: number, hex: string): Promise<Reservation> {
    if (size > this.maxBytes) return 'too-large';
    const filling = [...this.fills.entries()].reduce((n, [h, f]) => n + (h !== hex && f.size !== undefined ? f.size : 0), 0);
    const victims: string[] = [];
    let bytes = this.objectBytes;
    for (const [h, s] of this.lru) {
      if (bytes + filling + size <= this.maxBytes) break;
      victims.push(h);
      bytes -= s;
    }
    if (bytes + filling + size > this.maxBytes) return 'busy';
    for (const h of victims) await this.evict(h);
    if (victims.length > 0) await this.repo.refresh();
    return 'ok';
  }

  private async evict(hex: string): Promise<void> {
    const size = this.lru.get(hex);
    if (size === undefined) return;
    this.lru.delete(hex);
    this.objectBytes -= size;
    await unlink(join(this.options.dir, 'objects', hex)).catch(() => undefined);
    this.stats.evicted++;
    this.options.onEvent?.({ type: 'evicted', hex, size });
  }

  private touch(hex: string): void {
    const size = this.lru.get(hex);
    if (size === undefined) return;
    this.lru.delete(hex);
    this.lru.set(hex, size);
  }

  /** At start: every object must be named by its own SHA-256; the rest is deleted. LRU order from mtime. */
  private async checkObjects(): Promise<void> {
    let removed = false;
    for (const f of this.repo.list()) {
      if (f.path === f.sha256) continue;
      await unlink(join(this.options.dir, 'objects', f.path)).catch(() => undefined);
      this.stats.damaged++;
      removed = true;
      this.options.onEvent?.({ type: 'damaged', file: f.path });
    }
    if (removed) await this.repo.refresh();
    for (const f of [...this.repo.list()].sort((a, b) => a.mtimeMs - b.mtimeMs)) {
      this.lru.set(f.sha256, f.size);
      this.objectBytes += f.size;
    }
    for (const h of [...this.lru.keys()]) if (this.objectBytes > this.maxBytes) await this.evict(h);
    await this.repo.refresh();
  }

  private hexOf(fill: Fill): string {
    for (const [h, f] of this.fills) if (f === fill) return h;
    throw new CoapfwError('INVALID_ARGUMENT', 'gateway cache: unknown fill');
  }
}

/**
 * The byte range a GET asks for, as {@link serveBlock2} will answer it (RFC
 * 7959 §2.4: a larger SZX than ours is served at ours, NUM rescaled); undefined
 * while the size is unknown or for a malformed Block2 (serveBlock2 answers that).
 */
export function requestedRange(req: CoapMessage, size: number | undefined, maxSzx: number): { offset: number; end: number } | undefined {
  if (size === undefined) return undefined;
  const raw = getOption(req, OptionNumber.BLOCK2);
  if (raw === undefined) return { offset: 0, end: Math.min(size, 16 << maxSzx) };
  let b;
  try {
    b = decodeBlock(raw);
  } catch {
    return undefined;
  }
  const szx = Math.min(b.szx, maxSzx);
  const offset = (b.num << (b.szx - szx)) * (16 << szx);
  return { offset, end: Math.min(size, offset + (16 << szx)) };
}

/** 5.03 with Max-Age: ask again in `seconds`. */
function retryLater(seconds: number, why: string): ResponseSpec {
  return { ...errorResponse(Code.SERVICE_UNAVAILABLE, why), options: [uintOption(OptionNumber.MAX_AGE, seconds)] };
}

function failureResponse(reason: FillFailure): ResponseSpec {
  switch (reason) {
    case 'not-found':
      return errorResponse(Code.NOT_FOUND, 'not found upstream');
    case 'too-large':
      return errorResponse(Code.INTERNAL_SERVER_ERROR, 'the image is larger than the gateway cache');
    case 'io':
      return retryLater(5, 'gateway: cache write failed');
    case 'digest':
      return errorResponse(Code.BAD_GATEWAY, "the upstream's bytes do not match the content address");
    case 'etag':
      return errorResponse(Code.BAD_GATEWAY, "the upstream's ETag changed during the transfer");
    case 'refused':
      return errorResponse(Code.BAD_GATEWAY, 'refused by the gateway: the envelope failed verification');
    case 'upstream':
      return errorResponse(Code.BAD_GATEWAY, 'the upstream sent an unusable response');
  }
}
