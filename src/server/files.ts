/**
 * A directory as a repository of files to serve: every regular file under
 * the root, by relative path and by SHA-256. Files are read a slice at a time
 * through a small shared chunk cache; no request loads a whole file.
 *
 * Safety: only regular files whose real path lies inside the root are
 * indexed, so `..` segments and symlinks pointing out of the root cannot
 * reach anything. The check is made on the file actually opened for hashing
 * (its descriptor's path), so a directory swapped for a symlink during the
 * scan cannot smuggle an outside file in.
 *
 * Consistency: a file is hashed through one handle, and its identity (device,
 * inode, size, mtime) is taken from that same handle. Files are opened for
 * serving lazily and by path, so every later open is checked against that
 * identity: a file replaced by rename (or truncated, or rewritten with a new
 * mtime) before the next refresh is answered with CONTENT_CHANGED (5.03
 * Service Unavailable, try again) and triggers a refresh, never served under
 * the old ETag. What cannot be detected: bytes rewritten in place under a
 * handle that is already open (same inode, and the handle is not re-checked
 * on every read). Publish images by writing a new file and renaming it.
 */
import { open, lstat, readdir, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { ByteSource } from '../blockwise/source.js';
import { ETAG_LENGTH } from '../blockwise/source.js';
import { ContentFormat } from '../codec/numbers.js';
import { CoapfwError } from '../errors.js';
import { ChunkCache } from './chunk-cache.js';
import { HandlePool } from './handle-pool.js';
import { ReadLimiter } from './read-limiter.js';
import { skipName, type ScanFilterOptions } from './scan-filter.js';

/** One served file. */
export interface FileEntry extends ByteSource {
  /** Path relative to the root, with `/` separators. */
  readonly path: string;
  /** Lower-case hex SHA-256 of the content. */
  readonly sha256: string;
  readonly mtimeMs: number;
}

/** Repository limits and what to index. */
export interface FileRepositoryOptions extends ScanFilterOptions {
  /** Files larger than this are skipped at indexing. Default 1 GiB. */
  readonly maxFileSize?: number;
  /** Files indexed at most. Default 10000. */
  readonly maxFiles?: number;
  /** Bytes of file content cached for all files together. Default 8 MiB. */
  readonly cacheBytes?: number;
  /**
   * Told about every file that could not be indexed (deleted or renamed
   * between scan and hash, EACCES...; the file is skipped and retried on the
   * next refresh), about a subdirectory that cannot be read (once, until it
   * can be read again) and, from `coapfw serve`, about a failed periodic refresh.
   * Default: ignored (still counted in {@link FileRepository.errorCount}).
   */
  readonly onError?: (e: unknown) => void;
  /**
   * File handles kept open for serving; the least recently used idle one is
   * closed beyond this (a handle with a read in flight is never closed).
   * Default 64.
   */
  readonly maxOpenFiles?: number;
  /**
   * Distinct disk reads in flight at once (a chunk many requests wait on is
   * one read). Default 32. Further reads queue, up to `maxQueuedReads`
   * (default 4096); beyond that a read is refused with LIMIT_EXCEEDED,
   * which a server answers with 5.03 and Max-Age 1.
   */
  readonly maxConcurrentReads?: number;
  readonly maxQueuedReads?: number;
}

const CHUNK = 64 * 1024;

/** One indexed version of a file: where it is and which inode it was. */
interface Indexed {
  readonly rel: string;
  readonly abs: string;
  /** Unique per indexed version: names its cached chunks and its open handle. */
  readonly id: number;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** The files under one directory. Call {@link FileRepository.refresh} to pick up changes. */
export class FileRepository {
  private byPath = new Map<string, FileEntry>();
  private byHash = new Map<string, FileEntry>();
  /** By {@link Indexed.id}, least recently used first. */
  private readonly handles: HandlePool;
  /** Chunk loads in flight, by `id:offset`, so concurrent cold reads share one disk read. */
  private readonly loading = new Map<string, Promise<Uint8Array>>();
  /** What each published entry was indexed from. */
  private readonly indexed = new WeakMap<FileEntry, Indexed>();
  /** Ids of the indexed versions currently published. */
  private live = new Set<number>();
  private readonly cache: ChunkCache;
  private readonly reads: ReadLimiter;
  private diskReadCount = 0;
  private nextId = 0;
  private readonly listeners: Array<(changed: string[]) => void> = [];
  private refreshQueue: Promise<unknown> = Promise.resolve();
  private errors = 0;
  private refreshQueued = false;
  /** Subdirectories reported as unreadable, so that each refresh does not say it again. */
  private readonly unreadable = new Set<string>();

  private constructor(
    readonly root: string,
    private readonly options: FileRepositoryOptions,
  ) {
    this.cache = new ChunkCache(options.cacheBytes ?? 8 * 1024 * 1024);
    this.handles = new HandlePool(Math.max(1, options.maxOpenFiles ?? 64));
    this.reads = new ReadLimiter(options.maxConcurrentReads ?? 32, options.maxQueuedReads ?? 4096);
  }

  /**
   * Index `dir`, which must be a directory this process can read: anything
   * else is INVALID_ARGUMENT (missing, not a directory) or IO_ERROR (EACCES
   * and the like), never an empty repository.
   */
  static async open(dir: string, options: FileRepositoryOptions = {}): Promise<FileRepository> {
    let root: string;
    try {
      root = await realpath(dir);
      if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new CoapfwError('INVALID_ARGUMENT', `serve: '${dir}' is not a readable directory`, { cause: e, path: dir });
    }
    const repo = new FileRepository(root, options);
    await repo.refresh();
    return repo;
  }

  /** All entries, sorted by path. */
  list(): FileEntry[] {
    return [...this.byPath.values()].sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  byRelativePath(path: string): FileEntry | undefined {
    return this.byPath.get(path);
  }

  bySha256(hex: string): FileEntry | undefined {
    return this.byHash.get(hex.toLowerCase());
  }

  /** Call `listener` with the relative paths added, changed or removed by each refresh. */
  onChange(listener: (changed: string[]) => void): void {
    this.listeners.push(listener);
  }

  /** Files that could not be indexed, and failed refreshes reported through {@link report}, since the start. */
  get errorCount(): number {
    return this.errors;
  }

  /** Count `e` and hand it to the `onError` option, if any (which must not throw). */
  report(e: unknown): void {
    this.errors++;
    try {
      this.options.onError?.(e);
    } catch {
      // A failing logger must not stop serving.
    }
  }

  /**
   * Re-scan the directory; unchanged files (same inode, size and mtime) are not
   * hashed again. Returns the changed paths. A file that cannot be hashed is
   * skipped (reported through `onError`), never fails the whole refresh.
   * Concurrent calls run one after the other.
   */
  refresh(): Promise<string[]> {
    const run = this.refreshQueue.then(() => this.refreshNow());
    this.refreshQueue = run.catch(() => {});
    return run;
  }

  /** Queue one refresh unless one is already queued and not started (many failed opens, one rescan). */
  private refreshSoon(): void {
    if (this.refreshQueued) return;
    this.refreshQueued = true;
    const run = this.refreshQueue.then(() => {
      this.refreshQueued = false;
      return this.refreshNow();
    });
    this.refreshQueue = run.catch((e: unknown) => this.report(e));
  }

  private async refreshNow(): Promise<string[]> {
    const found = await this.scan();
    const byPath = new Map<string, FileEntry>();
    const byHash = new Map<string, FileEntry>();
    for (const f of found) {
      const old = this.byPath.get(f.rel);
      let entry: FileEntry;
      const was = old && this.indexed.get(old);
      if (old !== undefined && was !== undefined && was.size === f.size && was.mtimeMs === f.mtimeMs && was.ino === f.ino && was.dev === f.dev) entry = old;
      else {
        try {
          entry = await this.index(f.rel, f.abs);
        } catch (e) {
          this.report(new CoapfwError('IO_ERROR', `serve: cannot index '${f.rel}' (skipped)`, { cause: e }));
          continue;
        }
      }
      byPath.set(entry.path, entry);
      if (!byHash.has(entry.sha256)) byHash.set(entry.sha256, entry);
    }
    const live = new Set<number>();
    for (const e of byPath.values()) live.add(this.indexed.get(e)!.id);
    for (const id of this.live) {
      if (live.has(id)) continue;
      this.cache.drop(id);
      this.handles.drop(id);
    }
    this.live = live;
    const changed = [...byPath.keys()].filter((p) => this.byPath.get(p) !== byPath.get(p));
    for (const p of this.byPath.keys()) if (!byPath.has(p)) changed.push(p);
    this.byPath = byPath;
    this.byHash = byHash;
    if (changed.length > 0) for (const l of this.listeners) l(changed);
    return changed;
  }

  /** Disk reads made for serving since the start (a chunk shared by many requests counts once). */
  get diskReads(): number {
    return this.diskReadCount;
  }

  /** The most disk reads that were ever in flight at once (bounded by `maxConcurrentReads`). */
  get maxReadsSeen(): number {
    return this.reads.maxSeen;
  }

  /** Number of file handles open (or being opened) for serving. */
  get openFiles(): number {
    return this.handles.size;
  }

  /** Close every open file. */
  async close(): Promise<void> {
    await this.handles.closeAll();
  }

  private async scan(): Promise<Array<{ rel: string; abs: string; size: number; mtimeMs: number; dev: number; ino: number }>> {
    const maxFiles = this.options.maxFiles ?? 10_000;
    const maxSize = this.options.maxFileSize ?? 1024 ** 3;
    const out: Array<{ rel: string; abs: string; size: number; mtimeMs: number; dev: number; ino: number }> = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > 32) return;
      const names = await this.readDir(dir);
      for (const name of names.sort()) {
        if (out.length >= maxFiles) return;
        if (skipName(name, this.options)) continue;
        const abs = join(dir, name);
        const st = await lstat(abs).catch(() => undefined);
        if (st === undefined) continue;
        if (st.isDirectory()) {
          await walk(abs, depth + 1);
          continue;
        }
        // A symlink is served only if it resolves to a regular file inside the root.
        const real = st.isSymbolicLink() ? await realpath(abs).catch(() => undefined) : abs;
        if (real === undefined || !isInside(this.root, real)) continue;
        const target = st.isSymbolicLink() ? await stat(real).catch(() => undefined) : st;
        if (target === undefined || !target.isFile() || target.size > maxSize) continue;
        out.push({ rel: relative(this.root, abs).split(sep).join('/'), abs: real, size: target.size, mtimeMs: target.mtimeMs, dev: target.dev, ino: target.ino });
      }
    };
    await walk(this.root, 0);
    return out;
  }

  /**
   * The names in `dir`. The root must be readable (IO_ERROR otherwise: the
   * refresh fails and the index stays as it was); a subdirectory that cannot
   * be read is skipped and reported once until it can be read again.
   */
  private async readDir(dir: string): Promise<string[]> {
    try {
      const names = await readdir(dir);
      this.unreadable.delete(dir);
      return names;
    } catch (e) {
      const rel = relative(this.root, dir).split(sep).join('/');
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      if (dir === this.root) throw new CoapfwError('IO_ERROR', `serve: cannot read the directory '${this.root}' (${code})`, { cause: e, path: this.root });
      if (code === 'ENOENT' || code === 'ENOTDIR') return []; // removed or replaced since it was listed: nothing to report
      if (!this.unreadable.has(dir)) {
        this.unreadable.add(dir);
        this.report(new CoapfwError('IO_ERROR', `serve: cannot read the directory '${rel}' (${code}); its files are not served`, { cause: e, path: rel }));
      }
      return [];
    }
  }

  /** Hash the file through one handle and take its identity from the same handle. */
  private async index(rel: string, abs: string): Promise<FileEntry> {
    const handle = await open(abs, 'r');
    let st;
    const hash = sha256.create();
    try {
      st = await handle.stat();
      if (!st.isFile()) throw new CoapfwError('IO_ERROR', `serve: '${rel}' is no longer a regular file`);
      // The scan checked paths; a directory swapped for a symlink since could
      // have led this open outside the root. Check what was actually opened.
      if (!(await this.openedInside(handle, abs, st))) throw new CoapfwError('FORBIDDEN', `serve: '${rel}' resolves outside the served directory`);
      const buf = new Uint8Array(CHUNK);
      for (let pos = 0; pos < st.size; ) {
        const { bytesRead } = await handle.read(buf, 0, Math.min(CHUNK, st.size - pos), pos);
        if (bytesRead === 0) throw new CoapfwError('IO_ERROR', `serve: '${rel}' shrank while being hashed`);
        hash.update(buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    } finally {
      await handle.close().catch(() => {});
    }
    const digest = hash.digest();
    const file: Indexed = { rel, abs, id: this.nextId++, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    const entry: FileEntry = {
      path: rel,
      sha256: bytesToHex(digest),
      size: file.size,
      mtimeMs: file.mtimeMs,
      etag: digest.slice(0, ETAG_LENGTH),
      contentFormat: ContentFormat.OCTET_STREAM,
      read: (offset, length) => this.read(file, offset, length),
    };
    this.indexed.set(entry, file);
    return entry;
  }

  /**
   * Whether the open file lies inside the root: by the kernel's name for the
   * descriptor where there is one (Linux /proc), else by resolving the path
   * again and requiring it to be the same inode.
   */
  private async openedInside(handle: FileHandle, abs: string, st: { dev: number; ino: number }): Promise<boolean> {
    const byFd = await realpath(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    if (byFd !== undefined && byFd.startsWith('/')) return isInside(this.root, byFd);
    const real = await realpath(abs).catch(() => undefined);
    if (real === undefined || !isInside(this.root, real)) return false;
    const now = await stat(real).catch(() => undefined);
    return now !== undefined && now.dev === st.dev && now.ino === st.ino;
  }

  /** Slice of a file from the chunk cache; synchronous when cached. */
  private read(file: Indexed, offset: number, length: number): Uint8Array | Promise<Uint8Array> {
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
          if (this.live.has(file.id)) this.cache.set(file.id, start, data);
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
    const h = this.handles.acquire(file.id, () => this.openChecked(file), this.live.has(file.id));
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
        this.refreshSoon();
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

function isInside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r !== '' && !r.startsWith('..') && !r.startsWith(sep) && !r.includes(`${sep}..${sep}`);
}
