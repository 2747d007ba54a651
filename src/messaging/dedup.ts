/**
 * Duplicate detection for received CON and NON messages (RFC 7252 §4.5),
 * bounded both in entries and in lifetime so a flood of distinct message IDs
 * cannot grow memory. A duplicate CON is answered with the same response.
 */

/** One remembered exchange: the response, once known. */
export interface DedupEntry {
  readonly expiresAt: number;
  /** Encoded response to resend for a duplicate, or undefined while the handler runs. */
  response: Uint8Array | undefined;
}

/** Insertion-ordered cache: the oldest entry is also the first to expire. */
export class DedupCache {
  private readonly entries = new Map<string, DedupEntry>();
  evictions = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly lifetimeMs: number,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The live entry for `key`, if any. */
  get(key: string, now: number): DedupEntry | undefined {
    const e = this.entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Remember a new exchange; drops expired entries and, past the cap, the oldest. */
  add(key: string, now: number): DedupEntry {
    this.sweep(now);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
      this.evictions++;
    }
    const entry: DedupEntry = { expiresAt: now + this.lifetimeMs, response: undefined };
    this.entries.set(key, entry);
    return entry;
  }

  private sweep(now: number): void {
    // Entries share one lifetime, so insertion order is expiry order: stop at the first live one.
    for (const [k, e] of this.entries) {
      if (e.expiresAt > now) break;
      this.entries.delete(k);
    }
  }
}
