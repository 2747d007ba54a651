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
 *
 * The walk and the hash are in file-scan.ts, the serving reads in file-reader.ts;
 * this file keeps the index and its refreshes.
 */
import { realpath, stat } from 'node:fs/promises';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { ByteSource } from '../blockwise/source.js';
import { ETAG_LENGTH } from '../blockwise/source.js';
import { ContentFormat } from '../codec/numbers.js';
import { CoapfwError } from '../errors.js';
import { FileReader, type Indexed } from './file-reader.js';
import { DirectoryScanner, hashFile } from './file-scan.js';
import type { ScanFilterOptions } from './scan-filter.js';

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

/** The files under one directory. Call {@link FileRepository.refresh} to pick up changes. */
export class FileRepository {
  private byPath = new Map<string, FileEntry>();
  private byHash = new Map<string, FileEntry>();
  /** What each published entry was indexed from. */
  private readonly indexed = new WeakMap<FileEntry, Indexed>();
  /** Ids of the indexed versions currently published. */
  private live = new Set<number>();
  private readonly reader: FileReader;
  private readonly scanner: DirectoryScanner;
  private nextId = 0;
  private readonly listeners: Array<(changed: string[]) => void> = [];
  private refreshQueue: Promise<unknown> = Promise.resolve();
  private errors = 0;
  private refreshQueued = false;

  private constructor(
    readonly root: string,
    private readonly options: FileRepositoryOptions,
  ) {
    this.reader = new FileReader(options, (id) => this.live.has(id), () => this.refreshSoon());
    this.scanner = new DirectoryScanner(root, options, (e) => this.report(e));
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
    const found = await this.scanner.scan();
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
      this.reader.drop(id);
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
    return this.reader.diskReads;
  }

  /** The most disk reads that were ever in flight at once (bounded by `maxConcurrentReads`). */
  get maxReadsSeen(): number {
    return this.reader.maxReadsSeen;
  }

  /** Number of file handles open (or being opened) for serving. */
  get openFiles(): number {
    return this.reader.openFiles;
  }

  /** Close every open file. */
  async close(): Promise<void> {
    await this.reader.closeAll();
  }

  /** Hash the file and publish it as an entry whose reads go through the chunk cache. */
  private async index(rel: string, abs: string): Promise<FileEntry> {
    const st = await hashFile(this.root, rel, abs);
    const file: Indexed = { rel, abs, id: this.nextId++, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
    const entry: FileEntry = {
      path: rel,
      sha256: bytesToHex(st.digest),
      size: file.size,
      mtimeMs: file.mtimeMs,
      etag: st.digest.slice(0, ETAG_LENGTH),
      contentFormat: ContentFormat.OCTET_STREAM,
      read: (offset, length) => this.reader.read(file, offset, length),
    };
    this.indexed.set(entry, file);
    return entry;
  }
}
