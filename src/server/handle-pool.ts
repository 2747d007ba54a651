/**
 * A bounded pool of open file handles for serving: concurrent reads of one
 * file share one open, the least recently used idle handle is closed beyond
 * the limit, and a handle in use is never closed under a read.
 */
import type { FileHandle } from 'node:fs/promises';

/** One pooled open (or opening) file. */
export interface PooledHandle {
  readonly handle: Promise<FileHandle>;
  /** Reads in flight; the handle is closed only when this is 0. */
  reads: number;
}

/** Open file handles keyed by a file id, at most `maxOpen` of them idle-closable. */
export class HandlePool {
  private readonly handles = new Map<number, PooledHandle>();

  constructor(private readonly maxOpen: number) {}

  /** Handles open or being opened. */
  get size(): number {
    return this.handles.size;
  }

  /**
   * The handle for `id`, opened with `open` if needed, marked busy. With
   * `pooled` false (a file version no longer served) the handle is private
   * to this read and closed at its release.
   */
  acquire(id: number, open: () => Promise<FileHandle>, pooled: boolean): PooledHandle {
    let h = this.handles.get(id);
    if (h !== undefined) {
      this.handles.delete(id); // move to the most recently used end
    } else {
      h = { handle: open(), reads: 0 };
      const opened = h;
      h.handle.catch(() => {
        if (this.handles.get(id) === opened) this.handles.delete(id);
      });
    }
    if (pooled) this.handles.set(id, h);
    h.reads++;
    return h;
  }

  /** A read is done with `h`. */
  release(id: number, h: PooledHandle): void {
    h.reads--;
    if (h.reads > 0) return;
    if (this.handles.get(id) !== h) void closeQuietly(h); // dropped meanwhile, or never pooled
    this.evict();
  }

  /** Forget `id` (its file left the index); closed now if idle, else at its last release. */
  drop(id: number): void {
    const h = this.handles.get(id);
    if (h === undefined) return;
    this.handles.delete(id);
    if (h.reads === 0) void closeQuietly(h);
  }

  /** Close every pooled handle. */
  async closeAll(): Promise<void> {
    const all = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(all.map(closeQuietly));
  }

  /** Close least recently used idle handles beyond the limit. */
  private evict(): void {
    for (const [id, h] of this.handles) {
      if (this.handles.size <= this.maxOpen) return;
      if (h.reads > 0) continue;
      this.handles.delete(id);
      void closeQuietly(h);
    }
  }
}

function closeQuietly(h: PooledHandle): Promise<void> {
  return h.handle.then(
    (fh) => fh.close().catch(() => {}),
    () => {},
  );
}
