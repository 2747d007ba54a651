/**
 * Serving reads for a {@link FileRepository}: slices of indexed files through
 * a shared chunk cache, concurrent cold reads of one chunk sharing one disk
 * read, a bound on reads in flight, and pooled handles that are checked
 * against the indexed identity when opened (files.ts says why).
 */
import { open, type FileHandle } from 'node:fs/promises';
import { CoapfwError } from '../errors.js';
import { ChunkCache } from './chunk-cache.js';
import { CHUNK } from './file-scan.js';
import { HandlePool } from './handle-pool.js';
import { ReadLimiter } from './read-limiter.js';

/** One indexed version of a file: where it is and which inode it was. */
export interface Indexed {
  readonly rel: string;
  readonly abs: string;
  /** Unique per indexed version: names its cached chunks and its open handle. */
  readonly id: number;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** The reader's limits (see FileRepositoryOptions for each). */
export interface FileReaderLimits {
  readonly cacheBytes?: number;
  readonly maxOpenFiles?: number;
  readonly maxConcurrentReads?: number;
  readonly maxQueuedReads?: number;
}

/** Reads indexed files for serving. */
export class FileReader {
  /** By {@link Indexed.id}, least recently used first. */
  private readonly handles: HandlePool;
  /** Chunk loads in flight, by `id:offset`, so concurrent cold reads share one disk read. */
  private readonly loading = new Map<string, Promise<Uint8Array>>();
  private readonly cache: ChunkCache;
  private readonly reads: ReadLimiter;
  private diskReadCount = 0;

  /**
   * `isLive` says whether an indexed version is still published; `changed`
   * is called when an open finds the file no longer the indexed inode.
   */
  constructor(
    limits: FileReaderLimits,
    private readonly isLive: (id: number) => boolean,
    private readonly changed: () => void,
  ) {
    this.cache = new ChunkCache(limits.cacheBytes ?? 8 * 1024 * 1024);
    this.handles = new HandlePool(Math.max(1, limits.maxOpenFiles ?? 64));
    this.reads = new ReadLimiter(limits.maxConcurrentReads ?? 32, limits.maxQueuedReads ?? 4096);
  }

  /** Disk reads made for serving since the start (a chunk shared by many requests counts once). */
  get diskReads(): number {
    return this.diskReadCount;
  }

  /** The most disk reads that were ever in flight at once. */
  get maxReadsSeen(): number {
    return this.reads.maxSeen;
  }

  /** Number of file handles open (or being opened). */
  get openFiles(): number {
    return this.handles.size;
  }

  /** Forget the cached chunks and the handle of a version no longer published. */
  drop(id: number): void {
    this.cache.drop(id);
    this.handles.drop(id);
  }

  /** Close every open file. */
  closeAll(): Promise<void> {
    return this.handles.closeAll();
  }

  /** Slice of a file from the chunk cache; synchronous when cached. */
  read(file: Indexed, offset: number, length: number): Uint8Array | Promise<Uint8Array> {
    const end = Math.min(file.size, offset + length);
    const chunkStart = offset - (offset % CHUNK);
    if (end <= chunkStart + CHUNK) {
      const cached = this.cache.get(file.id, chunkStart);
      if (cached !== undefined) return cached.subarray(offset - chunkStart, end - chunkStart);
      return this.loadChunk(file, chunkStart).then((c) => c.subarray(offset - chunkStart, end - chunkStart));
    }
    // Spans two chunks (only for unaligned reads): read directly.
    return this.readRange(file, offset, end - offset);
  }

  private loadChunk(file: Indexed, start: number): Promise<Uint8Array> {
    const key = `${file.id}:${start}`;
    let p = this.loading.get(key);
    if (p === undefined) {
      p = this.readRange(file, start, Math.min(CHUNK, file.size - start))
        .then((data) => {
          // A version dropped by a refresh meanwhile leaves nothing behind in the cache.
          if (this.isLive(file.id)) this.cache.set(file.id, start, data);
          return data;
        })
        .finally(() => this.loading.delete(key));
      this.loading.set(key, p);
    }
    return p;
  }

  private readRange(file: Indexed, offset: number, length: number): Promise<Uint8Array> {
    return this.reads.run(() => {
      this.diskReadCount++;
      return this.readNow(file, offset, length);
    });
  }

  private async readNow(file: Indexed, offset: number, length: number): Promise<Uint8Array> {
    // A version a refresh has dropped (a reader still holds its old entry) gets a private handle.
    const h = this.handles.acquire(file.id, () => this.openChecked(file), this.isLive(file.id));
    try {
      const handle = await h.handle;
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new CoapfwError('IO_ERROR', `serve: ${file.rel} shrank while being served`);
        done += bytesRead;
      }
      return buf;
    } finally {
      this.handles.release(file.id, h);
    }
  }

  /** Open by path and check it is still the indexed inode, else CONTENT_CHANGED and a refresh. */
  private async openChecked(file: Indexed): Promise<FileHandle> {
    const handle = await open(file.abs, 'r');
    try {
      const st = await handle.stat();
      if (st.dev !== file.dev || st.ino !== file.ino || st.size !== file.size || st.mtimeMs !== file.mtimeMs) {
        this.changed();
        // 5.03 with Max-Age 1 (RFC 7252 §5.9.3.4): "try again in a second", by when the refresh has run.
        throw new CoapfwError('CONTENT_CHANGED', `serve: ${file.rel} changed since it was indexed; try again`, { maxAge: 1, path: file.rel });
      }
      return handle;
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
  }
}
