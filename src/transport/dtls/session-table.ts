/**
 * The server's table of DTLS sessions, keyed by peer address and port.
 *
 * Bounded (`maxSessions`, counting handshakes in progress), swept for sessions
 * idle longer than `idleTimeoutMs` and for handshakes older than
 * `handshakeTimeoutMs`. Entries are created only after a valid cookie
 * (RFC 6347 §4.2.1), so spoofed ClientHellos never reach this table.
 *
 * A peer with an established session may also have one "replacing" handshake:
 * RFC 6347 §4.2.8 lets the server keep the old association until the new
 * handshake completes; {@link SessionTable.promote} then swaps them.
 */
import type { Session } from './session.js';

/** Limits of the session table. */
export interface SessionTableOptions {
  readonly maxSessions: number;
  readonly idleTimeoutMs: number;
  readonly handshakeTimeoutMs: number;
}

/** Why a session left the table. */
export type ExpiryReason = 'idle' | 'handshake-timeout';

/** Peer-keyed sessions with a cap and expiry. */
export class SessionTable {
  private readonly map = new Map<string, Session>();
  private readonly replacing = new Map<string, Session>();

  constructor(private readonly opts: SessionTableOptions) {}

  get size(): number {
    return this.map.size + this.replacing.size;
  }

  get(key: string): Session | undefined {
    return this.map.get(key);
  }

  /** The handshake in progress that will replace the established session of `key`, if any. */
  getReplacing(key: string): Session | undefined {
    return this.replacing.get(key);
  }

  /** True when a new session would exceed the cap. */
  full(): boolean {
    return this.size >= this.opts.maxSessions;
  }

  /** Adds `s` as the handshake replacing the established session of `s.key`; returns the one it displaced, if any. */
  setReplacing(s: Session): Session | undefined {
    const old = this.replacing.get(s.key);
    this.replacing.set(s.key, s);
    return old;
  }

  /** Makes the replacing handshake `s` the session of its key; returns the session it replaced. */
  promote(s: Session): Session | undefined {
    if (this.replacing.get(s.key) !== s) return undefined;
    this.replacing.delete(s.key);
    const old = this.map.get(s.key);
    this.map.set(s.key, s);
    return old;
  }

  /** Adds (or replaces) the session of `s.key`. The caller checked `full()`. */
  set(s: Session): void {
    this.map.set(s.key, s);
  }

  /** Removes the entry only if it is still `s` (a replacement may have taken its place). */
  delete(s: Session): void {
    if (this.map.get(s.key) === s) this.map.delete(s.key);
    if (this.replacing.get(s.key) === s) this.replacing.delete(s.key);
  }

  /** Every session, replacing handshakes included. */
  values(): Session[] {
    return [...this.map.values(), ...this.replacing.values()];
  }

  /** Removes and returns the sessions that expired at `now`. */
  sweep(now: number): Array<{ session: Session; reason: ExpiryReason }> {
    const out: Array<{ session: Session; reason: ExpiryReason }> = [];
    for (const s of this.values()) {
      if (!s.established && now - s.createdAt > this.opts.handshakeTimeoutMs) out.push({ session: s, reason: 'handshake-timeout' });
      else if (now - s.lastActivity > this.opts.idleTimeoutMs) out.push({ session: s, reason: 'idle' });
    }
    for (const { session } of out) this.delete(session);
    return out;
  }

  /** Handshakes in progress from this IP address, any port. */
  handshakesOf(address: string): Session[] {
    return this.values().filter((s) => !s.established && s.peer.address === address);
  }

  /** Established sessions of this PSK identity. */
  establishedOf(identity: string): Session[] {
    return [...this.map.values()].filter((s) => s.established && s.handshake.identity === identity);
  }

  /**
   * Removes and returns the oldest handshake still in progress of the address
   * that has most of them, if any: many half-open handshakes from one address
   * make room first. Established sessions are never evicted to make room.
   */
  evictOldestHandshake(): Session | undefined {
    const byAddress = new Map<string, Session[]>();
    for (const s of this.values()) {
      if (s.established) continue;
      const list = byAddress.get(s.peer.address);
      if (list === undefined) byAddress.set(s.peer.address, [s]);
      else list.push(s);
    }
    let worst: Session[] | undefined;
    for (const list of byAddress.values()) if (worst === undefined || list.length > worst.length) worst = list;
    if (worst === undefined) return undefined;
    const oldest = worst.reduce((a, b) => (b.createdAt < a.createdAt ? b : a));
    this.delete(oldest);
    return oldest;
  }

  /** Removes everything. */
  clear(): Session[] {
    const all = this.values();
    this.map.clear();
    this.replacing.clear();
    return all;
  }
}

/** Options of {@link RecentHellos}. */
export interface RecentHellosOptions {
  /** How long a started ClientHello is remembered; twice the cookie lifetime covers every cookie that still verifies. */
  readonly ttlMs: number;
  /** Most entries kept; the oldest go first. */
  readonly capacity: number;
}

/**
 * The (peer, client_random) pairs of cookie-bearing ClientHellos that already
 * started a handshake, so that a late or replayed copy cannot start another
 * one and replace the peer's newer session (RFC 6347 §4.2.8, §4.1.2.6 in
 * spirit). Only hellos with a valid cookie are added, so an off-path attacker
 * cannot fill it; it is bounded anyway (insertion-ordered map as an LRU).
 */
export class RecentHellos {
  private readonly seen = new Map<string, number>(); // key -> expiry

  constructor(private readonly opts: RecentHellosOptions) {}

  get size(): number {
    return this.seen.size;
  }

  /** True when this pair started a handshake less than `ttlMs` ago. */
  has(peer: string, clientRandom: Uint8Array, now: number): boolean {
    this.prune(now);
    return this.seen.has(entryKey(peer, clientRandom));
  }

  /** Records that this pair started a handshake. */
  add(peer: string, clientRandom: Uint8Array, now: number): void {
    this.prune(now);
    const k = entryKey(peer, clientRandom);
    this.seen.delete(k);
    this.seen.set(k, now + this.opts.ttlMs);
    while (this.seen.size > this.opts.capacity) this.seen.delete(this.seen.keys().next().value!);
  }

  /** Forgets this pair: its handshake ended unestablished, so the client's retransmitted hello may start another. */
  delete(peer: string, clientRandom: Uint8Array): void {
    this.seen.delete(entryKey(peer, clientRandom));
  }

  private prune(now: number): void {
    // Entries are added in time order with one ttl, so expiries are ordered too.
    for (const [k, expiry] of this.seen) {
      if (expiry > now) break;
      this.seen.delete(k);
    }
  }
}

function entryKey(peer: string, clientRandom: Uint8Array): string {
  return `${peer}|${Buffer.from(clientRandom.buffer, clientRandom.byteOffset, clientRandom.length).toString('hex')}`;
}
