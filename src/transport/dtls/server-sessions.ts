/**
 * The DTLS server's session bookkeeping: which sessions it holds, which go
 * when limits are reached (handshakes per address, the table's cap,
 * established sessions per PSK identity), a replacing handshake taking its
 * peer's old session's place (RFC 6347 §4.2.8), expiry, and the stats and
 * events each of these ends with. server.ts decides what a datagram means;
 * this decides what the table looks like afterwards.
 */
import type { Peer } from '../../core/transport.js';
import type { ResolvedDtlsServerOptions, DtlsServerStats } from './server-options.js';
import type { Session } from './session.js';
import { RecentHellos, SessionTable } from './session-table.js';

/** The sessions of one server, with its limits applied. */
export class ServerSessions {
  readonly table: SessionTable;
  /** (peer, client_random) of hellos that started a handshake within two cookie lifetimes. */
  readonly recentHellos: RecentHellos;

  constructor(
    private readonly opts: ResolvedDtlsServerOptions,
    private readonly stats: DtlsServerStats,
  ) {
    this.table = new SessionTable(opts);
    this.recentHellos = new RecentHellos({ ttlMs: 2 * opts.cookieLifetimeMs, capacity: Math.max(1024, 4 * opts.maxSessions) });
  }

  /** A newer handshake supersedes an unfinished replacement. */
  supersede(replacing: Session, peer: Peer): void {
    replacing.dispose();
    this.table.delete(replacing);
    this.stats.handshakesFailed++;
    this.opts.onEvent?.({ type: 'handshake-failed', peer, reason: 'superseded by a newer handshake' });
  }

  /** A new handshake that proved its address replaces an unfinished one at once. */
  replaceUnfinished(existing: Session, peer: Peer): void {
    existing.dispose();
    this.table.delete(existing);
    this.stats.sessionsReplaced++;
    this.opts.onEvent?.({ type: 'closed', peer, reason: 'replaced by a new handshake' });
  }

  /** Make room for a new handshake from `peer`; false when the table stays full. */
  makeRoom(peer: Peer): boolean {
    // One address (many ports) may hold only so many half-open handshakes: its own oldest makes room.
    const mine = this.table.handshakesOf(peer.address);
    if (mine.length >= this.opts.maxHandshakesPerAddress) {
      const oldest = mine.reduce((a, b) => (b.createdAt < a.createdAt ? b : a));
      oldest.dispose();
      this.table.delete(oldest);
      this.forgetHello(oldest);
      this.stats.handshakesFailed++;
      this.stats.handshakesEvictedPerAddress++;
      this.opts.onEvent?.({ type: 'handshake-failed', peer: oldest.peer, reason: `evicted: more than ${this.opts.maxHandshakesPerAddress} handshakes from ${peer.address}` });
    }
    if (this.table.full()) {
      this.sweep();
      // Make room by dropping an unfinished handshake (often a client that gave up
      // and retried from another port), from the address holding most of them;
      // established sessions stay.
      const evicted = this.table.full() ? this.table.evictOldestHandshake() : undefined;
      if (evicted !== undefined) {
        evicted.dispose();
        this.forgetHello(evicted);
        this.stats.handshakesFailed++;
        this.opts.onEvent?.({ type: 'handshake-failed', peer: evicted.peer, reason: 'evicted: session table full' });
      }
      if (this.table.full()) return false;
    }
    return true;
  }

  /** A replacing handshake completed: it takes the place of the peer's old session (§4.2.8). */
  promote(s: Session): void {
    const old = this.table.promote(s);
    if (old === undefined) return;
    old.dispose(); // the peer no longer has its keys: no close_notify
    this.stats.sessionsReplaced++;
    this.opts.onEvent?.({ type: 'closed', peer: old.peer, reason: 'replaced by a new handshake' });
  }

  /** Keeps at most `maxSessionsPerIdentity` established sessions of `identity`: the oldest go. */
  capIdentity(newest: Session, identity: string): void {
    const others = this.table.establishedOf(identity).filter((x) => x !== newest);
    const excess = others.length + 1 - this.opts.maxSessionsPerIdentity;
    if (excess <= 0) return;
    others.sort((a, b) => a.createdAt - b.createdAt);
    for (const old of others.slice(0, excess)) {
      void old.close();
      this.table.delete(old);
      this.stats.sessionsClosedPerIdentity++;
      this.opts.onEvent?.({ type: 'closed', peer: old.peer, reason: `more than ${this.opts.maxSessionsPerIdentity} sessions of identity ${JSON.stringify(identity)}` });
    }
  }

  /** A handshake failed: it leaves the table. */
  fail(s: Session, reason: string): void {
    s.dispose();
    this.table.delete(s);
    this.forgetHello(s);
    this.stats.handshakesFailed++;
    this.opts.onEvent?.({ type: 'handshake-failed', peer: s.peer, reason });
  }

  /**
   * A handshake ended (evicted, timed out, failed) without being established:
   * the client's retransmitted ClientHello (same random, cookie still valid)
   * may start a new one instead of being dropped as stale. A handshake
   * superseded by a newer hello of the same peer keeps its entry: the client
   * moved on, and a replay of the old hello must not displace the new one.
   */
  private forgetHello(s: Session): void {
    if (!s.established) this.recentHellos.delete(s.key, s.handshake.clientRandom);
  }

  /** Expire idle sessions and handshakes that took too long. */
  sweep(): void {
    for (const { session, reason } of this.table.sweep(Date.now())) {
      session.dispose();
      this.stats.sessionsExpired++;
      if (reason === 'handshake-timeout') {
        this.stats.handshakesFailed++;
        this.forgetHello(session);
      }
      const why = reason === 'handshake-timeout' && session.pendingReason !== undefined ? `${reason}: ${session.pendingReason}` : reason;
      this.opts.onEvent?.({ type: reason === 'idle' ? 'closed' : 'handshake-failed', peer: session.peer, reason: why });
    }
  }
}
