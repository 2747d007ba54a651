/**
 * A byte-bounded LRU of file chunks shared by every file a server serves, so
 * that many devices fetching the same image read the disk once.
 */
export class ChunkCache {
  private readonly map = new Map<number | string, Uint8Array>();
  private bytes = 0;
  /** The key last moved to the most recently used end: a run of hits on one chunk moves it once. */
  private newest: number | string | undefined;

  constructor(private readonly maxBytes: number) {}

  get(id: number, offset: number): Uint8Array | undefined {
    const key = keyOf(id, offset);
    const v = this.map.get(key);
    if (v !== undefined && key !== this.newest) {
      this.newest = key;
      // Move to the most recently used end.
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(id: number, offset: number, data: Uint8Array): void {
    if (data.length > this.maxBytes) return;
    const key = keyOf(id, offset);
    this.newest = key;
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
    for (const [k, v] of this.map) {
      if (idOf(k) === id) {
        this.map.delete(k);
        this.bytes -= v.length;
      }
    }
  }

  get size(): number {
    return this.bytes;
  }
}

// A number key (exact below 2^53) is hashed without building a string per block served.
const OFFSET_SPAN = 2 ** 33;
const MAX_NUMERIC_ID = 2 ** 20;

function keyOf(id: number, offset: number): number | string {
  return id < MAX_NUMERIC_ID && offset < OFFSET_SPAN ? id * OFFSET_SPAN + offset : `${id}:${offset}`;
}

function idOf(key: number | string): number {
  return typeof key === 'number' ? Math.floor(key / OFFSET_SPAN) : Number(key.slice(0, key.indexOf(':')));
}
