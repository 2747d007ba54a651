/**
 * Duplicate detection for received CON and NON messages (RFC 7252 §4.5),
 * bounded both in entries and in lifetime so a flood of distinct message IDs
 * cannot grow memory. A duplicate CON is answered with the same response.
 *
 * Looked up once per datagram a server receives, so it avoids building a
 * string key per message: entries are found by message ID (a number), and
 * the few that share an ID (other peers) are told apart by the peer's key.
 */

/** One remembered exchange: the response, once known. */
export interface DedupEntry {
  readonly expiresAt: number;
  /** Encoded response to resend for a duplicate, or undefined while the handler runs. */
  response: Uint8Array | undefined;
}

interface Slot extends DedupEntry {
  readonly peer: string;
  readonly mid: number;
  /** The next entry with the same message ID (another peer). */
  next: Slot | undefined;
  /** False once expired or evicted (it may still sit in the queue). */
  live: boolean;
}

/** Insertion-ordered cache: the oldest entry is also the first to expire. */
export class DedupCache {
  /** Newest entry first for each message ID. */
  private readonly byMid = new Map<number, Slot>();
  /** Every entry in insertion (= expiry) order, from `head` on. */
  private queue: Slot[] = [];
  private head = 0;
  private count = 0;
  evictions = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly lifetimeMs: number,
  ) {}

  get size(): number {
    return this.count;
  }

  /** The live entry for (`peer`, `mid`), if any; `peer` is the peer's key (peerKey). */
  get(peer: string, mid: number, now: number): DedupEntry | undefined {
    for (let e = this.byMid.get(mid); e !== undefined; e = e.next) {
      if (e.peer !== peer) continue;
      if (e.expiresAt > now) return e;
      this.remove(e);
      return undefined;
    }
    return undefined;
  }

  /** Remember a new exchange; drops expired entries and, past the cap, the oldest. */
  add(peer: string, mid: number, now: number): DedupEntry {
    this.sweep(now);
    while (this.count >= this.maxEntries && this.head < this.queue.length) {
      const oldest = this.queue[this.head++]!;
      if (!oldest.live) continue;
      this.remove(oldest);
      this.evictions++;
    }
    const entry: Slot = { expiresAt: now + this.lifetimeMs, response: undefined, peer, mid, next: this.byMid.get(mid), live: true };
    this.byMid.set(mid, entry);
    this.queue.push(entry);
    this.count++;
    this.compact();
    return entry;
  }

  private sweep(now: number): void {
    // Entries share one lifetime, so insertion order is expiry order: stop at the first live one.
    while (this.head < this.queue.length) {
      const e = this.queue[this.head]!;
      if (e.live && e.expiresAt > now) break;
      this.head++;
      if (e.live) this.remove(e);
    }
  }

  private remove(e: Slot): void {
    e.live = false;
    this.count--;
    const first = this.byMid.get(e.mid);
    if (first === e) {
      if (e.next === undefined) this.byMid.delete(e.mid);
      else this.byMid.set(e.mid, e.next);
      return;
    }
    for (let p = first; p !== undefined; p = p.next) {
      if (p.next === e) {
        p.next = e.next;
        return;
      }
    }
  }

  /** Drop the consumed front of the queue now and then (amortised O(1) per entry). */
  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}
