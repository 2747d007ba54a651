/**
 * A byte-bounded LRU of file chunks shared by every file a server serves, so
 * that many devices fetching the same image read the disk once.
 */
export class ChunkCache {
  private readonly map = new Map<string, Uint8Array>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  get(id: number, offset: number): Uint8Array | undefined {
    const key = `${id}:${offset}`;
    const v = this.map.get(key);
    if (v !== undefined) {
      // Move to the most recently used end.
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(id: number, offset: number, data: Uint8Array): void {
    if (data.length > this.maxBytes) return;
    const key = `${id}:${offset}`;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.bytes -= old.length;
      this.map.delete(key);
    }
    this.map.set(key, data);
    this.bytes += data.length;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.length;
    }
  }

  /** Forget every chunk of one file. */
  drop(id: number): void {
    const prefix = `${id}:`;
    for (const [k, v] of this.map) {
      if (k.startsWith(prefix)) {
        this.map.delete(k);
        this.bytes -= v.length;
      }
    }
  }

  get size(): number {
    return this.bytes;
  }
}
