/**
 * The staging area of blob uploads (`PUT /pub/blob/<hex>`): a private
 * temporary directory of this server process where an upload is streamed
 * block by block, hashed as it goes, and kept under its content address once
 * its SHA-256 matches, until a release names it (the release then copies it
 * into the store in the release's transaction) or it expires.
 *
 * Nothing here is ever served: devices see a blob only once it is in the
 * store. Bounded in count (uploads in progress and blobs kept), in bytes
 * (everything written, finished or not) and in lifetime (an upload that
 * stops arrives at Block1Stream's idle timeout and is removed; a staged blob
 * that no release takes is removed after `keepMs`).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdtemp, open, rename, rm, unlink, readFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Code } from '../codec/numbers.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { CoapfwError } from '../errors.js';
import type { UploadSink } from '../blockwise/block1-stream.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import { checkInt } from './validate.js';

/** Limits of the staging area; every one has a safe default. */
export interface StagingOptions {
  /** Directory to create the staging directory in. Default the system's temporary directory. */
  readonly parentDir?: string;
  /** Uploads in progress plus blobs staged, at most. Default 32. */
  readonly maxEntries?: number;
  /** Bytes written to staging in all, finished or not. Default 256 MiB. */
  readonly maxBytes?: number;
  /** Largest blob. Default 64 MiB (the store's default largest blob). */
  readonly maxBlobBytes?: number;
  /** A staged blob that no release took is removed after this long. Default 1 h. */
  readonly keepMs?: number;
}

/** A blob staged complete, its SHA-256 checked. */
export interface StagedBlob {
  readonly sha256: string;
  readonly size: number;
  readonly path: string;
  readonly expiresAt: number;
}

const encoder = new TextEncoder();

/** Uploads and staged blobs of one server process. */
export class BlobStaging {
  private readonly staged = new Map<string, StagedBlob>();
  private readonly uploads = new Set<StagedUpload>();
  private bytes = 0;
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  readonly maxBlobBytes: number;
  private readonly keepMs: number;
  private sweeper: TimerHandle | undefined;
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly runtime: Runtime,
    options: StagingOptions,
  ) {
    this.maxEntries = checkInt(options.maxEntries ?? 32, 'staging maxEntries', 1);
    this.maxBytes = checkInt(options.maxBytes ?? 256 * 1024 * 1024, 'staging maxBytes', 1);
    this.maxBlobBytes = checkInt(options.maxBlobBytes ?? 64 * 1024 * 1024, 'staging maxBlobBytes', 1);
    this.keepMs = checkInt(options.keepMs ?? 3600_000, 'staging keepMs', 1);
    this.arm();
  }

  /** Create the staging directory (fresh, private to this process). */
  static async open(runtime: Runtime, options: StagingOptions = {}): Promise<BlobStaging> {
    const dir = await mkdtemp(join(options.parentDir ?? tmpdir(), 'coapfw-staging-'));
    return new BlobStaging(dir, runtime, options);
  }

  /** Bytes in staging now (finished blobs and uploads in progress). */
  get stagedBytes(): number {
    return this.bytes;
  }

  /** Uploads in progress. */
  get uploading(): number {
    return this.uploads.size;
  }

  /** The staged blob with this SHA-256 (lower-case hex), if it is complete and not expired. */
  get(sha256: string): StagedBlob | undefined {
    const b = this.staged.get(sha256);
    return b !== undefined && b.expiresAt > this.runtime.now() ? b : undefined;
  }

  /** Every staged blob (for listings and tests). */
  list(): StagedBlob[] {
    return [...this.staged.values()];
  }

  /** A staged blob's bytes. */
  async read(blob: StagedBlob): Promise<Uint8Array> {
    return new Uint8Array(await readFile(blob.path));
  }

  /** Remove a staged blob (a release took it, or it expired). */
  async remove(sha256: string): Promise<void> {
    const b = this.staged.get(sha256);
    if (b === undefined) return;
    this.staged.delete(sha256);
    this.bytes -= b.size;
    await unlink(b.path).catch(() => undefined); // gone already: nothing to free
  }

  /**
   * Start an upload of the blob `sha256`, `size1` bytes when announced: a sink
   * for Block1Stream, or the 5.03/4.13 that refuses it now.
   */
  async begin(sha256: string, size1: number | undefined): Promise<UploadSink | ResponseSpec> {
    if (this.closed) throw new CoapfwError('LIMIT_EXCEEDED', 'staging: closing', { maxAge: 5 });
    if (size1 !== undefined && size1 > this.maxBlobBytes) throw tooLarge(this.maxBlobBytes);
    if (size1 !== undefined && this.bytes + size1 > this.maxBytes) throw full(`${size1} more bytes do not fit (${this.bytes} of ${this.maxBytes} in use)`);
    if (this.uploads.size + this.staged.size >= this.maxEntries) throw full(`${this.maxEntries} uploads and staged blobs already`);
    const path = join(this.dir, `${randomBytes(8).toString('hex')}.part`);
    const handle = await open(path, 'wx', 0o600);
    const upload = new StagedUpload(this, sha256, path, handle);
    this.uploads.add(upload);
    return upload;
  }

  /** Remove everything and stop the expiry timer. */
  async close(): Promise<void> {
    this.closed = true;
    this.runtime.clearTimer(this.sweeper);
    for (const u of [...this.uploads]) u.abort('staging closed');
    this.staged.clear();
    this.bytes = 0;
    await rm(this.dir, { recursive: true, force: true });
  }

  /** @internal an upload wrote `n` more bytes: account for them, or refuse them. */
  reserve(n: number, total: number): void {
    if (total > this.maxBlobBytes) throw tooLarge(this.maxBlobBytes);
    if (this.bytes + n > this.maxBytes) throw full(`${this.maxBytes} bytes in use`);
    this.bytes += n;
  }

  /** @internal a reserved write did not happen. */
  unreserve(n: number): void {
    this.bytes -= n;
  }

  /** @internal an upload ended: `kept` bytes stay (a staged blob), the rest are freed. */
  release(upload: StagedUpload, written: number, kept: StagedBlob | undefined): void {
    this.uploads.delete(upload);
    if (kept === undefined) {
      this.bytes -= written;
      return;
    }
    const old = this.staged.get(kept.sha256);
    if (old !== undefined) this.bytes -= old.size; // the same bytes, uploaded twice: one copy stays (rename replaced it)
    this.staged.set(kept.sha256, kept);
  }

  /** @internal when a finished upload's blob expires. */
  expiry(): number {
    return this.runtime.now() + this.keepMs;
  }

  private arm(): void {
    const every = Math.min(this.keepMs, 60_000);
    this.sweeper = this.runtime.setTimer(every, () => {
      if (this.closed) return;
      const now = this.runtime.now();
      for (const b of [...this.staged.values()]) if (b.expiresAt <= now) void this.remove(b.sha256);
      this.arm();
    });
  }
}

function tooLarge(max: number): CoapfwError {
  return new CoapfwError('TOO_LARGE', `staging: blobs are at most ${max} bytes`);
}

function full(why: string): CoapfwError {
  // Uploads in progress finish or expire within Block1Stream's idle timeout; staged blobs within keepMs.
  return new CoapfwError('LIMIT_EXCEEDED', `staging: full: ${why}`, { maxAge: 60 });
}

/** One upload being streamed into a file of the staging directory, hashed as it comes. */
class StagedUpload implements UploadSink {
  private readonly hash: Hash = createHash('sha256');
  private written = 0;
  private ended = false;

  constructor(
    private readonly staging: BlobStaging,
    private readonly sha256: string,
    private readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  async write(data: Uint8Array): Promise<void> {
    if (this.ended) throw new CoapfwError('CONFLICT', 'staging: upload already ended');
    this.staging.reserve(data.length, this.written + data.length);
    try {
      await this.handle.write(data, 0, data.length, this.written);
    } catch (e) {
      this.staging.unreserve(data.length);
      throw new CoapfwError('IO_ERROR', `staging: write failed: ${(e as Error).message}`, { cause: e });
    }
    this.written += data.length;
    this.hash.update(data);
  }

  async finish(): Promise<ResponseSpec> {
    this.ended = true;
    await this.handle.close();
    const digest = this.hash.digest('hex');
    if (digest !== this.sha256) {
      await unlink(this.path).catch(() => undefined); // the error below is what matters
      this.staging.release(this, this.written, undefined);
      throw new CoapfwError('DIGEST_MISMATCH', `blob: the upload's SHA-256 is ${digest}, not ${this.sha256}: nothing kept`);
    }
    const final = join(this.staging.dir, `${digest}.blob`);
    await rename(this.path, final);
    this.staging.release(this, this.written, { sha256: digest, size: this.written, path: final, expiresAt: this.staging.expiry() });
    return { code: Code.CREATED, payload: encoder.encode(`staged ${this.written} bytes`) };
  }

  abort(_reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.staging.release(this, this.written, undefined);
    // Close, then remove; a failure of either leaves a file in our private directory that close() removes.
    void this.handle
      .close()
      .catch(() => undefined)
      .then(() => unlink(this.path))
      .catch(() => undefined);
  }
}
