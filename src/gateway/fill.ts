/**
 * One content-addressed image being fetched into the cache: written to a
 * partial file as it arrives, hashed in order, servable block by block while
 * it fills, and turned into a cache object only when its SHA-256 is the one
 * its address names.
 *
 * What a device may see while it fills: any block that lies wholly inside the
 * bytes received so far, except the last block of the image, which is held
 * until the digest matched (so no device ever holds a complete image whose
 * bytes are not the ones its address names), and nothing at all of an image
 * held whole (`holdWhole`: a SUIT envelope fetched by content address waits
 * for its verification; `serveWhileFilling: false` holds every image).
 *
 * States: `filling` (a fetch runs), `stalled` (the upstream went away; the
 * bytes so far and the hash state are kept, and the next request after
 * `retryAt` resumes from the first missing block), `verified` (every byte
 * arrived and matched: the partial file is synced, awaiting its move into
 * the cache), `failed` (permanent: a digest mismatch, a changing ETag, too
 * large, not found upstream; the partial file is removed).
 */
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { BlockBitmap, blockCount } from '../blockwise/bitmap.js';
import { ETAG_LENGTH, type ByteSource } from '../blockwise/source.js';
import type { FetchedBlock } from '../blockwise/fetch.js';
import { blockSize } from '../codec/block.js';
import { ContentFormat } from '../codec/numbers.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError } from '../errors.js';

/** Fill states (see the module comment). */
export type FillState = 'filling' | 'stalled' | 'verified' | 'failed';

/** Why a fill failed for good. */
export type FillFailure = 'digest' | 'etag' | 'too-large' | 'not-found' | 'refused' | 'upstream' | 'io';

/** How an image came from upstream: Q-Block2 (RFC 9177) or Block2 (RFC 7959). */
export type TransferMode = 'qblock2' | 'block2';

/**
 * Where the blocks come from: resumes at `startOffset` (skipping `held`),
 * calls `onBlock` per block (in any order, calls may overlap: the fill takes
 * them one at a time, in call order). Resolves with the way it fetched,
 * when it knows.
 */
export type BlockFetcher = (from: ResumeFrom, onBlock: (b: FetchedBlock) => Promise<void>) => Promise<TransferMode | void>;

/** Where a fetch starts: the first byte missing (a multiple of `szx`'s block size unless the image is complete), the block size and ETag seen so far. */
export interface ResumeFrom {
  readonly startOffset: number;
  readonly szx: number | undefined;
  readonly etag: Uint8Array | undefined;
  /**
   * Once the size is known: the blocks held, numbered at `szx` (the
   * contiguous prefix, and blocks that arrived ahead of a gap and are kept):
   * a fetch that can skip them (Q-Block2) need not ask for them again.
   */
  readonly held: BlockBitmap | undefined;
  /**
   * Most bytes the fill keeps past the first missing one: a fetcher whose
   * blocks arrive out of order must not deliver a block further ahead
   * (Q-Block2's `maxAhead`), else the fill fails.
   */
  readonly maxAheadBytes: number;
}

/** Options of one {@link Fill}. */
export interface FillOptions {
  readonly hex: string;
  readonly partialPath: string;
  readonly runtime: Runtime;
  readonly fetch: BlockFetcher;
  /**
   * Asked once the size is known: may the cache hold this many bytes? `busy`
   * stalls the fill (it resumes later), `too-large` fails it.
   */
  readonly reserve: (size: number) => Promise<Reservation> | Reservation;
  /** Largest out-of-order bytes held in memory before the gap fills. Default 4 MiB. */
  readonly maxPendingBytes?: number;
  /** Serve blocks before the whole image verified (never the last one). Default true. */
  readonly serveWhileFilling?: boolean;
}

/** The cache's answer to a fill that learnt its size. */
export type Reservation = 'ok' | 'busy' | 'too-large';

/** A failed fill's reason, with the error. */
export interface FillError {
  readonly reason: FillFailure;
  readonly error: unknown;
}

/** The fill of one image. */
export class Fill {
  state: FillState = 'filling';
  size: number | undefined;
  failure: FillError | undefined;
  /** When a stalled fill may resume (runtime ms). */
  retryAt = 0;
  /** Consecutive stalls, for the back-off. */
  stalls = 0;
  /** Bytes received from upstream (requests for blocks count once each). */
  received = 0;
  /** How the last run that ended fetched, when its fetcher said. */
  mode: TransferMode | undefined;
  /** Set when the image must not be served before it verified (an envelope). */
  holdWhole: boolean;
  readonly source: ByteSource;
  private filled = 0;
  private readonly hash = sha256.create();
  private readonly early = new Map<number, Uint8Array>();
  private earlyBytes = 0;
  private upstreamEtag: Uint8Array | undefined;
  private szx: number | undefined;
  private handle: Promise<FileHandle> | undefined;
  private readonly started: number;
  private running: Promise<void> | undefined;
  /** The blocks of this run, taken one at a time in the order they were handed over. */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: FillOptions) {
    this.holdWhole = options.serveWhileFilling === false;
    this.started = options.runtime.now();
    const etag = hexToBytes(options.hex).slice(0, ETAG_LENGTH);
    const fill = this; // for the getter: the size becomes known during the fill
    this.source = {
      get size() {
        return fill.size ?? 0;
      },
      etag,
      contentFormat: ContentFormat.OCTET_STREAM,
      read: (offset, length) => this.read(offset, length),
    };
  }

  /** Bytes hashed and written, from 0 (the servable prefix). */
  get contiguous(): number {
    return this.filled;
  }

  /** Whether bytes [offset, end) may be served now (a block past the end may: serveBlock2 answers it 4.02). */
  servable(offset: number, end: number): boolean {
    if (this.size === undefined || this.state === 'failed') return false;
    if (this.state === 'verified' || (offset > 0 && offset >= this.size)) return true;
    if (this.holdWhole) return false;
    return end <= this.filled && end < this.size;
  }

  /** Seconds until bytes up to `end` are likely here (the Max-Age of a 5.03), 1..60. */
  waitSeconds(end: number): number {
    const now = this.options.runtime.now();
    if (this.state === 'stalled') return clamp(Math.ceil((this.retryAt - now) / 1000) + 1);
    const elapsed = now - this.started;
    if (this.filled === 0 || elapsed <= 0 || this.size === undefined) return 1;
    const rate = this.filled / elapsed; // bytes per ms
    const missing = (this.holdWhole || end >= this.size ? this.size : end) - this.filled;
    return clamp(Math.ceil(missing / rate / 1000));
  }

  /** Start (or resume) fetching; resolves when this run ends, in whatever state. */
  run(): Promise<void> {
    if (this.running !== undefined) return this.running;
    if (this.state !== 'filling' && this.state !== 'stalled') return Promise.resolve();
    this.state = 'filling';
    this.running = this.fetchRest().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Whether this run is in progress. */
  get active(): boolean {
    return this.running !== undefined;
  }

  /** Close the partial file (and remove it unless `keep`). */
  async dispose(keep = false): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h !== undefined) await h.then((f) => f.close(), () => undefined);
    if (!keep) await unlink(this.options.partialPath).catch(() => undefined);
  }

  /** Mark the fill failed for good (e.g. an envelope that failed verification): nothing of it is served. */
  async fail(reason: FillFailure, error: unknown): Promise<void> {
    this.state = 'failed';
    this.failure = { reason, error };
    this.early.clear();
    await this.dispose();
  }

  private async fetchRest(): Promise<void> {
    try {
      this.queue = Promise.resolve();
      const from: ResumeFrom = { startOffset: this.filled, szx: this.szx, etag: this.upstreamEtag, held: this.held(), maxAheadBytes: this.maxPendingBytes };
      const mode = await this.options.fetch(from, (b) => this.enqueue(b));
      await this.queue;
      if (mode !== undefined) this.mode = mode;
      if (this.state !== 'filling') return; // failed meanwhile
      if (this.size === undefined || this.filled !== this.size) {
        throw new CoapfwError('BLOCK_MISMATCH', `fill ${this.options.hex}: the upstream ended at byte ${this.filled} of ${this.size ?? '?'}`);
      }
      await this.finish();
    } catch (e) {
      await this.queue.catch(() => undefined); // a block being written belongs to this run
      await this.onError(e);
    }
  }

  private get maxPendingBytes(): number {
    return this.options.maxPendingBytes ?? 4 << 20;
  }

  /**
   * One block at a time, in the order they came: `accept` awaits the size
   * reservation and the file, and two blocks inside it at once would reserve
   * twice or write out of order. The order also bounds what waits ahead of a
   * gap (see {@link ResumeFrom.maxAheadBytes}). After a failure every later
   * block fails with it.
   */
  private enqueue(b: FetchedBlock): Promise<void> {
    this.queue = this.queue.then(() => this.accept(b));
    return this.queue;
  }

  /** The blocks held, at the block size of this fill, once its size is known. */
  private held(): BlockBitmap | undefined {
    if (this.size === undefined || this.szx === undefined) return undefined;
    const bs = blockSize(this.szx);
    const map = new BlockBitmap(blockCount(this.size, bs));
    const prefix = this.filled === this.size ? map.total : Math.floor(this.filled / bs);
    for (let n = 0; n < prefix; n++) map.set(n);
    for (const [offset, data] of this.early) {
      const whole = data.length === bs || offset + data.length === this.size;
      if (offset % bs === 0 && whole) map.set(offset / bs);
    }
    return map;
  }

  private async accept(b: FetchedBlock): Promise<void> {
    if (this.state !== 'filling') throw new CoapfwError('ABORTED', 'fill: no longer filling');
    this.received += b.data.length;
    if (this.size === undefined) await this.learnSize(b);
    this.upstreamEtag ??= b.etag;
    this.szx = b.szx;
    const size = this.size!;
    const end = b.offset + b.data.length;
    if (end > size) throw new CoapfwError('BLOCK_MISMATCH', `fill ${this.options.hex}: block at ${b.offset} goes past the size ${size}`);
    if (end <= this.filled) return; // bytes we have (a resumed fetch repeating a block)
    if (b.offset > this.filled) return this.holdEarly(b);
    await this.append(b.data.subarray(this.filled - b.offset));
    for (let next = this.early.get(this.filled); next !== undefined; next = this.early.get(this.filled)) {
      this.early.delete(this.filled);
      this.earlyBytes -= next.length;
      await this.append(next);
    }
  }

  private async learnSize(b: FetchedBlock): Promise<void> {
    const size = b.total ?? (b.more ? undefined : b.offset + b.data.length);
    if (size === undefined) throw new CoapfwError('BLOCK_MISMATCH', `fill ${this.options.hex}: the upstream did not say the size (Size2)`);
    const answer = await this.options.reserve(size);
    if (answer === 'too-large') throw new FillAbort('too-large', new CoapfwError('TOO_LARGE', `fill ${this.options.hex}: ${size} bytes do not fit in the cache`));
    if (answer === 'busy') throw new CoapfwError('LIMIT_EXCEEDED', `fill ${this.options.hex}: the cache is full of images being filled; trying later`);
    this.size = size;
  }

  private holdEarly(b: FetchedBlock): void {
    if (this.early.has(b.offset)) return;
    this.earlyBytes += b.data.length;
    if (this.earlyBytes > this.maxPendingBytes) {
      throw new FillAbort('upstream', new CoapfwError('BLOCK_MISMATCH', `fill ${this.options.hex}: more than ${this.maxPendingBytes} bytes arrived ahead of a gap`));
    }
    this.early.set(b.offset, b.data);
  }

  /** Hash and write the next bytes in order; they become servable once written. */
  private async append(data: Uint8Array): Promise<void> {
    this.hash.update(data);
    const f = await (this.handle ??= open(this.options.partialPath, 'w+', 0o600));
    for (let done = 0; done < data.length; ) {
      const { bytesWritten } = await f.write(data, done, data.length - done, this.filled + done);
      done += bytesWritten;
    }
    this.filled += data.length;
  }

  private async finish(): Promise<void> {
    const digest = bytesToHex(this.hash.digest());
    if (digest !== this.options.hex) {
      throw new FillAbort('digest', new CoapfwError('DIGEST_MISMATCH', `fill ${this.options.hex}: the upstream's bytes hash to ${digest}`));
    }
    const f = await (this.handle ??= open(this.options.partialPath, 'w+', 0o600));
    await f.sync(); // on disk before it may be renamed into the cache; the handle stays open to serve until then
    this.state = 'verified';
  }

  private async onError(e: unknown): Promise<void> {
    if (this.state === 'failed') return;
    const permanent = classify(e);
    if (permanent !== undefined) return this.fail(permanent, e instanceof FillAbort ? e.error : e);
    // The upstream went away: keep what we have, resume later with back-off.
    this.state = 'stalled';
    this.stalls++;
    this.failure = { reason: 'upstream', error: e };
    this.retryAt = this.options.runtime.now() + Math.min(60_000, 1000 * 2 ** Math.min(this.stalls - 1, 6));
  }

  private read(offset: number, length: number): Promise<Uint8Array> {
    const end = Math.min(this.size ?? 0, offset + length);
    const h = this.handle;
    if (h === undefined) return Promise.reject(new CoapfwError('CONTENT_CHANGED', `fill ${this.options.hex}: moved into the cache; ask again`, { maxAge: 1 }));
    return h.then(async (f) => {
      const buf = new Uint8Array(end - offset);
      try {
        for (let done = 0; done < buf.length; ) {
          const { bytesRead } = await f.read(buf, done, buf.length - done, offset + done);
          if (bytesRead === 0) throw new Error('partial file shorter than expected');
          done += bytesRead;
        }
      } catch (e) {
        // Closed under the read because the image just moved into the cache: asking again finds it there.
        if (this.handle === undefined) throw new CoapfwError('CONTENT_CHANGED', `fill ${this.options.hex}: moved into the cache; ask again`, { maxAge: 1, cause: e });
        throw new CoapfwError('IO_ERROR', `fill ${this.options.hex}: ${(e as Error).message}`, { cause: e, path: this.options.partialPath });
      }
      return buf;
    });
  }
}

/** A permanent failure with its reason. */
class FillAbort extends Error {
  constructor(
    readonly reason: FillFailure,
    readonly error: unknown,
  ) {
    super((error as Error)?.message ?? reason);
  }
}

/** The permanent reason of a failure, or undefined for one worth resuming after. */
function classify(e: unknown): FillFailure | undefined {
  if (e instanceof FillAbort) return e.reason;
  if (!(e instanceof CoapfwError)) return 'io';
  switch (e.code) {
    case 'ETAG_MISMATCH':
      return 'etag';
    case 'TOO_LARGE':
      return 'too-large';
    case 'BLOCK_MISMATCH':
    case 'BAD_BLOCK_OPTION':
    case 'MALFORMED_MESSAGE':
      return 'upstream';
    case 'RESPONSE_CODE':
      // 5.03/4.29 were retried by the fetcher already; a 5.xx is the upstream being away, a 4.04 is an answer.
      if (e.responseCode === 0x84) return 'not-found';
      return (e.responseCode ?? 0) >> 5 === 5 ? undefined : 'upstream';
    case 'IO_ERROR':
      return e.path !== undefined ? 'io' : undefined; // a file of ours, or the network
    default:
      return undefined;
  }
}

function clamp(s: number): number {
  return Math.max(1, Math.min(60, Number.isFinite(s) ? s : 1));
}
