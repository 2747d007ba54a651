/**
 * A directory as a repository of files to serve: every regular file under
 * the root, by relative path and by SHA-256. Files are read a slice at a time
 * through a small shared chunk cache; no request loads a whole file.
 *
 * Safety: only regular files whose real path lies inside the root are
 * indexed, so `..` segments and symlinks pointing out of the root cannot
 * reach anything. A file replaced by rename is picked up on the next
 * refresh; its old bytes stay consistent until then because the open file
 * handle keeps the old inode.
 */
import { createReadStream } from 'node:fs';
import { lstat, open, readdir, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { ByteSource } from '../blockwise/source.js';
import { ETAG_LENGTH } from '../blockwise/source.js';
import { ContentFormat } from '../codec/numbers.js';
import { CoapfwError } from '../errors.js';
import { ChunkCache } from './chunk-cache.js';

/** One served file. */
export interface FileEntry extends ByteSource {
  /** Path relative to the root, with `/` separators. */
  readonly path: string;
  /** Lower-case hex SHA-256 of the content. */
  readonly sha256: string;
  readonly mtimeMs: number;
}

/** Repository limits. */
export interface FileRepositoryOptions {
  /** Files larger than this are skipped at indexing. Default 1 GiB. */
  readonly maxFileSize?: number;
  /** Files indexed at most. Default 10000. */
  readonly maxFiles?: number;
  /** Bytes of file content cached for all files together. Default 8 MiB. */
  readonly cacheBytes?: number;
  /**
   * Told about every file that could not be indexed (deleted or renamed
   * between scan and hash, EACCES...; the file is skipped and retried on the
   * next refresh) and, from `coapfw serve`, about a failed periodic refresh.
   * Default: ignored (still counted in {@link FileRepository.errorCount}).
   */
  readonly onError?: (e: unknown) => void;
}

const CHUNK = 64 * 1024;

/** The files under one directory. Call {@link FileRepository.refresh} to pick up changes. */
export class FileRepository {
  private byPath = new Map<string, FileEntry>();
  private byHash = new Map<string, FileEntry>();
  private readonly handles = new Map<string, { handle: FileHandle; mtimeMs: number; size: number }>();
  private readonly cache: ChunkCache;
  private nextId = 0;
  private readonly ids = new Map<string, number>();
  private readonly listeners: Array<(changed: string[]) => void> = [];
  private refreshQueue: Promise<unknown> = Promise.resolve();
  private errors = 0;

  private constructor(
    readonly root: string,
    private readonly options: FileRepositoryOptions,
  ) {
    this.cache = new ChunkCache(options.cacheBytes ?? 8 * 1024 * 1024);
  }

  /** Index `dir` (which must be a directory). */
  static async open(dir: string, options: FileRepositoryOptions = {}): Promise<FileRepository> {
    let root: string;
    try {
      root = await realpath(dir);
      if (!(await stat(root)).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw new CoapfwError('INVALID_ARGUMENT', `serve: '${dir}' is not a readable directory`, { cause: e });
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
   * Re-scan the directory; unchanged files (same size and mtime) are not
   * hashed again. Returns the changed paths. A file that cannot be hashed is
   * skipped (reported through `onError`), never fails the whole refresh.
   * Concurrent calls run one after the other.
   */
  refresh(): Promise<string[]> {
    const run = this.refreshQueue.then(() => this.refreshNow());
    this.refreshQueue = run.catch(() => {});
    return run;
  }

  private async refreshNow(): Promise<string[]> {
    const found = await this.scan();
    const byPath = new Map<string, FileEntry>();
    const byHash = new Map<string, FileEntry>();
    for (const f of found) {
      const old = this.byPath.get(f.rel);
      let entry: FileEntry;
      if (old !== undefined && old.size === f.size && old.mtimeMs === f.mtimeMs) entry = old;
      else {
        try {
          entry = await this.index(f.rel, f.abs, f.size, f.mtimeMs);
        } catch (e) {
          this.report(new CoapfwError('IO_ERROR', `serve: cannot index '${f.rel}' (skipped)`, { cause: e }));
          continue;
        }
      }
      byPath.set(entry.path, entry);
      if (!byHash.has(entry.sha256)) byHash.set(entry.sha256, entry);
    }
    for (const [rel, h] of this.handles) {
      const e = byPath.get(rel);
      if (e === undefined || e.mtimeMs !== h.mtimeMs || e.size !== h.size) {
        this.handles.delete(rel);
        this.cache.drop(this.idOf(rel));
        await h.handle.close().catch(() => {});
      }
    }
    const changed = [...byPath.keys()].filter((p) => this.byPath.get(p) !== byPath.get(p));
    for (const p of this.byPath.keys()) if (!byPath.has(p)) changed.push(p);
    this.byPath = byPath;
    this.byHash = byHash;
    if (changed.length > 0) for (const l of this.listeners) l(changed);
    return changed;
  }

  /** Close every open file. */
  async close(): Promise<void> {
    for (const h of this.handles.values()) await h.handle.close().catch(() => {});
    this.handles.clear();
  }

  private async scan(): Promise<Array<{ rel: string; abs: string; size: number; mtimeMs: number }>> {
    const maxFiles = this.options.maxFiles ?? 10_000;
    const maxSize = this.options.maxFileSize ?? 1024 ** 3;
    const out: Array<{ rel: string; abs: string; size: number; mtimeMs: number }> = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      if (depth > 32) return;
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names.sort()) {
        if (out.length >= maxFiles) return;
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
        out.push({ rel: relative(this.root, abs).split(sep).join('/'), abs: real, size: target.size, mtimeMs: target.mtimeMs });
      }
    };
    await walk(this.root, 0);
    return out;
  }

  private async index(rel: string, abs: string, size: number, mtimeMs: number): Promise<FileEntry> {
    const hash = sha256.create();
    for await (const chunk of createReadStream(abs)) hash.update(chunk as Uint8Array);
    const digest = hash.digest();
    const id = this.idOf(rel);
    this.cache.drop(id);
    return {
      path: rel,
      sha256: bytesToHex(digest),
      size,
      mtimeMs,
      etag: digest.slice(0, ETAG_LENGTH),
      contentFormat: ContentFormat.OCTET_STREAM,
      read: (offset, length) => this.read(rel, abs, id, size, mtimeMs, offset, length),
    };
  }

  private idOf(rel: string): number {
    let id = this.ids.get(rel);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(rel, id);
    }
    return id;
  }

  /** Slice of a file from the chunk cache; synchronous when cached. */
  private read(rel: string, abs: string, id: number, size: number, mtimeMs: number, offset: number, length: number): Uint8Array | Promise<Uint8Array> {
    const end = Math.min(size, offset + length);
    const chunkStart = offset - (offset % CHUNK);
    if (end <= chunkStart + CHUNK) {
      const cached = this.cache.get(id, chunkStart);
      if (cached !== undefined) return cached.subarray(offset - chunkStart, end - chunkStart);
      return this.loadChunk(rel, abs, id, size, mtimeMs, chunkStart).then((c) => c.subarray(offset - chunkStart, end - chunkStart));
    }
    // Spans two chunks (only for unaligned reads): read directly.
    return this.readRange(rel, abs, mtimeMs, size, offset, end - offset);
  }

  private async loadChunk(rel: string, abs: string, id: number, size: number, mtimeMs: number, start: number): Promise<Uint8Array> {
    const data = await this.readRange(rel, abs, mtimeMs, size, start, Math.min(CHUNK, size - start));
    this.cache.set(id, start, data);
    return data;
  }

  private async readRange(rel: string, abs: string, mtimeMs: number, size: number, offset: number, length: number): Promise<Uint8Array> {
    let h = this.handles.get(rel);
    if (h === undefined) {
      h = { handle: await open(abs, 'r'), mtimeMs, size };
      this.handles.set(rel, h);
    }
    const buf = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await h.handle.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new CoapfwError('IO_ERROR', `serve: ${rel} shrank while being served`);
      done += bytesRead;
    }
    return buf;
  }
}

function isInside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r !== '' && !r.startsWith('..') && !r.startsWith(sep) && !r.includes(`${sep}..${sep}`);
}
