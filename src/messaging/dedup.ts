/**
 * Duplicate detection for received CON and NON messages (RFC 7252 §4.5),
 * bounded both in entries and in lifetime so a flood of distinct message IDs
 * cannot grow memory. A duplicate CON is answered with the same response.
 *
 * Looked up once per datagram a server receives, so it avoids building a
 * string key per message: entries are found by the peer's key (a string the
 * endpoint caches per peer, so its hash is computed once) and then by
 * message ID (a number).
 * The entries live in a ring of `maxEntries` slots allocated as they are
 * first needed: a steady stream of requests allocates one small object each
 * and nothing else (no growing or re-sliced arrays).
 *
 * Responses to GETs that may be processed again (RFC 7252 §4.5 relaxes
 * "process only once" for idempotent requests) are kept only for the newest
 * `maxReplayable` of them: a block server answering thousands of GETs a
 * second otherwise held 4096 responses of a kilobyte each for a fraction of
 * a second, long enough to reach V8's old generation and feed its major GCs
 * (about a fifth of the server's CPU per block). A duplicate of an older one
 * is processed again; every other response is kept as long as its entry.
 */
import { CoapfwError } from '../errors.js';

/** One remembered exchange: the response, once known. */
export interface DedupEntry {
  readonly expiresAt: number;
  /** Encoded response to resend for a duplicate, or undefined while the handler runs. */
  response: Uint8Array | undefined;
  /** The response was let go (see {@link DedupCache.keep}): a duplicate CON is processed again. */
  reprocess: boolean;
}

/** One entry; a class so that every entry has one shape (the lookups stay monomorphic). */
class Slot implements DedupEntry {
  response: Uint8Array | undefined = undefined;
  reprocess = false;

  constructor(
    readonly expiresAt: number,
    readonly peer: string,
    readonly mid: number,
  ) {}
}

/** Insertion-ordered cache: the oldest entry is also the first to expire. */
export class DedupCache {
  /** Per peer key, its entries by message ID: two lookups by a cached string hash and a number, no collisions. */
  private readonly byPeer = new Map<string, Map<number, Slot>>();
  /** Entries in insertion (= expiry) order: `count` of them from `head`, wrapping. */
  private readonly ring: Array<Slot | undefined> = [];
  private head = 0;
  private count = 0;
  /** The entries holding a replayable response, oldest first from `replayHead`. */
  private readonly replayable: Array<Slot | undefined> = [];
  private replayHead = 0;
  evictions = 0;

  constructor(
    private readonly maxEntries: number,
    private readonly lifetimeMs: number,
    private readonly maxReplayable = 256,
  ) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new CoapfwError('INVALID_ARGUMENT', `endpoint: maxDedupEntries must be an integer >= 1, got ${maxEntries}`);
    if (!Number.isInteger(maxReplayable) || maxReplayable < 1) throw new CoapfwError('INVALID_ARGUMENT', `endpoint: maxReplayableResponses must be an integer >= 1, got ${maxReplayable}`);
  }

  /**
   * Remember `response` for duplicates of `entry`. With `replayable` (a GET
   * that may be processed again) only the newest `maxReplayable` such
   * responses are kept: the oldest is let go and its entry marked to be
   * processed again if its request comes once more.
   */
  keep(entry: DedupEntry, response: Uint8Array | undefined, replayable: boolean): void {
    entry.response = response;
    if (!replayable || response === undefined) return;
    const slot = entry as Slot;
    const at = this.replayHead;
    const oldest = this.replayable[at];
    if (oldest !== undefined && oldest !== slot) {
      oldest.response = undefined;
      oldest.reprocess = true;
    }
    if (at === this.replayable.length) this.replayable.push(slot);
    else this.replayable[at] = slot;
    this.replayHead = (at + 1) % this.maxReplayable;
  }

  get size(): number {
    return this.count;
  }

  /** The live entry for (`peer`, `mid`), if any; `peer` is the peer's key (peerKey). */
  get(peer: string, mid: number, now: number): DedupEntry | undefined {
    const e = this.byPeer.get(peer)?.get(mid);
    // An expired one is left for the next add to sweep (so is every older entry: one lifetime for all).
    return e !== undefined && e.expiresAt > now ? e : undefined;
  }

  /** Remember a new exchange; drops expired entries and, past the cap, the oldest. */
  add(peer: string, mid: number, now: number): DedupEntry {
    // Entries share one lifetime, so insertion order is expiry order: stop at the first live one.
    while (this.count > 0 && this.ring[this.head]!.expiresAt <= now) this.shift();
    if (this.count >= this.maxEntries) {
      this.shift();
      this.evictions++;
    }
    const entry = new Slot(now + this.lifetimeMs, peer, mid);
    let mids = this.byPeer.get(peer);
    if (mids === undefined) this.byPeer.set(peer, (mids = new Map()));
    // A message ID the peer reused after its entry expired (not yet swept): the new exchange replaces it.
    mids.set(mid, entry);
    const at = (this.head + this.count) % this.maxEntries;
    if (at === this.ring.length) this.ring.push(entry);
    else this.ring[at] = entry;
    this.count++;
    return entry;
  }

  /** Forget the oldest entry. */
  private shift(): void {
    const e = this.ring[this.head]!;
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.maxEntries;
    this.count--;
    const mids = this.byPeer.get(e.peer);
    // Only if it is still the peer's entry for that ID (a newer exchange may have replaced it).
    if (mids === undefined || mids.get(e.mid) !== e) return;
    mids.delete(e.mid);
    if (mids.size === 0) this.byPeer.delete(e.peer);
  }
}
