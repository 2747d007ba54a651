/**
 * Finding and hashing the files a {@link FileRepository} serves: a walk of
 * the root that admits only regular files whose real path lies inside it,
 * and a hash taken through one handle whose identity (device, inode, size,
 * mtime) is read from that same handle. See files.ts for why.
 */
import { open, lstat, readdir, realpath, stat, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { CoapfwError } from '../errors.js';
import { skipName, type ScanFilterOptions } from './scan-filter.js';

/** Bytes hashed per read at indexing, and the size of a cached chunk when serving. */
export const CHUNK = 64 * 1024;

/** A regular file the walk found, with the identity it had then. */
export interface ScannedFile {
  readonly rel: string;
  readonly abs: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly dev: number;
  readonly ino: number;
}

/** What the walk takes from the repository's options. */
export interface ScanOptions extends ScanFilterOptions {
  readonly maxFileSize?: number;
  readonly maxFiles?: number;
}

/** Walks one root; remembers the subdirectories it reported unreadable. */
export class DirectoryScanner {
  /** Subdirectories reported as unreadable, so that each refresh does not say it again. */
  private readonly unreadable = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly options: ScanOptions,
    private readonly report: (e: unknown) => void,
  ) {}

  async scan(): Promise<ScannedFile[]> {
    const maxFiles = this.options.maxFiles ?? 10_000;
    const maxSize = this.options.maxFileSize ?? 1024 ** 3;
    const out: ScannedFile[] = [];
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
}

/** A file's SHA-256 and the identity of the inode that was hashed. */
export interface HashedFile {
  readonly digest: Uint8Array;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Hash the file through one handle and take its identity from the same handle. */
export async function hashFile(root: string, rel: string, abs: string): Promise<HashedFile> {
  const handle = await open(abs, 'r');
  let st;
  const hash = sha256.create();
  try {
    st = await handle.stat();
    if (!st.isFile()) throw new CoapfwError('IO_ERROR', `serve: '${rel}' is no longer a regular file`);
    // The scan checked paths; a directory swapped for a symlink since could
    // have led this open outside the root. Check what was actually opened.
    if (!(await openedInside(root, handle, abs, st))) throw new CoapfwError('FORBIDDEN', `serve: '${rel}' resolves outside the served directory`);
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
  return { digest: hash.digest(), dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
}

/**
 * Whether the open file lies inside the root: by the kernel's name for the
 * descriptor where there is one (Linux /proc), else by resolving the path
 * again and requiring it to be the same inode.
 */
async function openedInside(root: string, handle: FileHandle, abs: string, st: { dev: number; ino: number }): Promise<boolean> {
  const byFd = await realpath(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
  if (byFd !== undefined && byFd.startsWith('/')) return isInside(root, byFd);
  const real = await realpath(abs).catch(() => undefined);
  if (real === undefined || !isInside(root, real)) return false;
  const now = await stat(real).catch(() => undefined);
  return now !== undefined && now.dev === st.dev && now.ino === st.ino;
}

function isInside(root: string, p: string): boolean {
  const r = relative(root, p);
  return r !== '' && !r.startsWith('..') && !r.startsWith(sep) && !r.includes(`${sep}..${sep}`);
}
