/**
 * DTLS 1.2 PSK server for the RFC 7925 profile, as a {@link Transport}: the CoAP
 * endpoint runs over it unchanged. `onMessage` delivers decrypted application
 * data with the peer; `send` encrypts to that peer's established session.
 *
 * Per datagram (RFC 6347 §4.1): split into records; a ClientHello without a
 * valid cookie is answered with a stateless HelloVerifyRequest (§4.2.1), echoing
 * the ClientHello's record and message sequence numbers; a ClientHello with a
 * valid cookie starts a session that replaces any earlier session of the same
 * address and port (a rebooted device, §4.2.8) once its Finished verified (the
 * old session keeps working until then), unless the same (peer, client_random)
 * already started a handshake within two cookie lifetimes (a late or replayed
 * hello); everything else goes to the
 * peer's session, or is dropped. The session table is capped and swept
 * (server-sessions.ts: evictions, replacement, expiry).
 */
import { randomBytes } from 'node:crypto';
import { CoapfwError } from '../../errors.js';
import { peerKey, type DatagramHandler, type Peer, type Transport } from '../../core/transport.js';
import { UdpTransport } from '../udp.js';
import { CookieJar } from './cookie.js';
import { ServerHandshake, checkClientHello } from './handshake.js';
import { DecodeError, HandshakeType, fullMessage, helloVerifyRequestBody, parseClientHello, parseFragments } from './messages.js';
import { AlertLevel, ContentType, encodeRecord, parseRecords, type DtlsRecord } from './record.js';
import { Session, type SessionEvent } from './session.js';
import { publish } from '../../diagnostics.js';
import type { RecentHellos, SessionTable } from './session-table.js';
import { ServerSessions } from './server-sessions.js';
import { resolveDtlsServerOptions, type DtlsServerOptions, type DtlsServerStats, type ResolvedDtlsServerOptions } from './server-options.js';

export { retransmitScheduleMs, type DtlsServerEvent, type DtlsServerOptions, type DtlsServerStats } from './server-options.js';

/** A running DTLS server. */
export class DtlsServer implements Transport {
  readonly stats: DtlsServerStats = {
    datagrams: 0, helloVerifyRequests: 0, handshakesStarted: 0, handshakesOk: 0, handshakesFailed: 0,
    sessionsReplaced: 0, staleHellosDropped: 0, sessionsRejected: 0, handshakesEvictedPerAddress: 0, sessionsClosedPerIdentity: 0, sessionsExpired: 0, recordsDropped: 0, replaysDropped: 0, badRecordsDropped: 0, internalErrors: 0,
  };
  private handler: DatagramHandler = () => {};
  private readonly sessions: ServerSessions;
  private readonly table: SessionTable;
  private readonly cookies: CookieJar;
  private readonly recentHellos: RecentHellos;
  private readonly sweeper: NodeJS.Timeout;
  private readonly hint: Uint8Array | undefined;
  private closed = false;
  private readonly opts: ResolvedDtlsServerOptions;

  /** @internal use {@link createDtlsServer}; `options` are validated (again) here. */
  constructor(
    private readonly inner: Transport,
    options: DtlsServerOptions,
  ) {
    const resolved = resolveDtlsServerOptions(options);
    const onEvent = resolved.onEvent;
    // Every session event also goes to the coapfw:dtls channel (src/diagnostics.ts).
    const opts: ResolvedDtlsServerOptions = { ...resolved, onEvent: (e) => {
      publish('dtls', () => ({ ...e, peer: `${e.peer.address}:${e.peer.port}` }));
      onEvent?.(e);
    } };
    this.opts = opts;
    this.sessions = new ServerSessions(opts, this.stats);
    this.table = this.sessions.table;
    this.recentHellos = this.sessions.recentHellos;
    this.cookies = new CookieJar({ lifetimeMs: opts.cookieLifetimeMs, now: Date.now, random: rand });
    this.hint = opts.hint === undefined ? undefined : new TextEncoder().encode(opts.hint);
    const every = Math.max(50, Math.min(1000, opts.idleTimeoutMs / 4, opts.handshakeTimeoutMs / 4));
    this.sweeper = setInterval(() => this.sessions.sweep(), every);
    this.sweeper.unref();
    inner.onMessage((data, peer) => this.onDatagram(data, peer));
  }

  /** Number of sessions, handshakes in progress included. */
  get sessionCount(): number {
    return this.table.size;
  }

  /** True when `peer` has an established session. */
  hasSession(peer: Peer): boolean {
    return this.table.get(peerKey(peer))?.established ?? false;
  }

  /**
   * The PSK identity `peer` authenticated with (its established session), or
   * undefined: what a resource uses to tell who is asking (RFC 7925 §4.2).
   */
  identityOf(peer: Peer): string | undefined {
    const s = this.table.get(peerKey(peer));
    return s?.established ? s.handshake.identity : undefined;
  }

  send(data: Uint8Array, peer: Peer): Promise<void> {
    if (this.closed) return Promise.reject(new CoapfwError('TRANSPORT_CLOSED', 'dtls: server is closed'));
    if (data.length > 16384) return Promise.reject(new CoapfwError('INVALID_ARGUMENT', `dtls: datagram of ${data.length} bytes exceeds 2^14`));
    const s = this.table.get(peerKey(peer));
    if (s === undefined || !s.established) {
      return Promise.reject(new CoapfwError('DTLS_NO_SESSION', `dtls: no established session with ${peerKey(peer)}`));
    }
    return this.inner.send(s.seal(data), peer);
  }

  onMessage(handler: DatagramHandler): void {
    this.handler = handler;
  }

  address(): Peer {
    return this.inner.address();
  }

  /** Sends close_notify to established peers, drops all state and closes the transport. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    const goodbyes: Promise<void>[] = [];
    for (const s of this.table.clear()) {
      if (s.established) goodbyes.push(s.close());
      else s.dispose();
    }
    // Let the close_notify alerts leave before the socket closes.
    await Promise.all(goodbyes);
    await this.inner.close();
  }

  private onDatagram(data: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    this.stats.datagrams++;
    try {
      this.dispatch(data, peer);
    } catch (e) {
      // Safety net: no datagram may take the server down. Count it and drop it.
      this.stats.internalErrors++;
      this.opts.onEvent?.({ type: 'internal-error', peer, error: e });
    }
  }

  private dispatch(data: Uint8Array, peer: Peer): void {
    const records = parseRecords(data);
    if (records.length === 0) return void this.stats.recordsDropped++;
    const key = peerKey(peer);
    const first = records[0]!;
    if (first.epoch === 0 && first.type === ContentType.handshake && first.fragment[0] === HandshakeType.clientHello) {
      return this.onClientHello(first, peer, key);
    }
    const s = this.route(key, first);
    if (s === undefined) return void (this.stats.recordsDropped += records.length);
    this.handleEvents(s, s.receive(records, Date.now()));
  }

  /**
   * The session a datagram belongs to. With a handshake replacing an
   * established session, plaintext records go to the handshake; protected
   * ones to whichever session's keys authenticate the first record.
   */
  private route(key: string, first: DtlsRecord): Session | undefined {
    const current = this.table.get(key);
    const next = this.table.getReplacing(key);
    if (next === undefined) return current;
    if (first.epoch === 0 || current === undefined) return next;
    return next.readsEpoch1 && !current.authenticates(first) ? next : current;
  }

  private onClientHello(rec: DtlsRecord, peer: Peer, key: string): void {
    let hello;
    let frag;
    try {
      const frags = parseFragments(rec.fragment);
      frag = frags[0]!;
      // A fragmented ClientHello is legal but never needed for PSK; drop it.
      if (frags.length !== 1 || frag.fragmentOffset !== 0 || frag.body.length !== frag.length) throw new DecodeError('fragmented');
      hello = parseClientHello(frag.body);
    } catch (e) {
      if (!(e instanceof DecodeError)) throw e;
      return void this.stats.recordsDropped++;
    }
    const replacing = this.table.getReplacing(key);
    if (replacing !== undefined && equal(replacing.handshake.clientRandom, hello.random)) {
      return this.handleEvents(replacing, replacing.receive([rec], Date.now()));
    }
    const existing = this.table.get(key);
    if (existing !== undefined && equal(existing.handshake.clientRandom, hello.random)) {
      // The client repeated its ClientHello: the session retransmits flight 4.
      if (!existing.established) return this.handleEvents(existing, existing.receive([rec], Date.now()));
      // A replay of the hello that opened an established session must not replace it.
      return void this.stats.recordsDropped++;
    }
    const bad = checkClientHello(hello);
    if (bad !== undefined) {
      this.stats.handshakesFailed++;
      this.opts.onEvent?.({ type: 'handshake-failed', peer, reason: bad.reason });
      const alert = encodeRecord(ContentType.alert, 0, rec.seq, new Uint8Array([AlertLevel.fatal, bad.alert]));
      return void this.inner.send(alert, peer).catch(() => {});
    }
    if (hello.cookie.length === 0 || !this.cookies.verify(key, hello.cookieInput, hello.cookie)) {
      // RFC 6347 §4.2.1: stateless; copy the record and message sequence numbers.
      this.stats.helloVerifyRequests++;
      const hvr = fullMessage(HandshakeType.helloVerifyRequest, frag.messageSeq, helloVerifyRequestBody(this.cookies.make(key, hello.cookieInput)));
      return void this.inner.send(encodeRecord(ContentType.handshake, 0, rec.seq, hvr), peer).catch(() => {});
    }
    if (this.recentHellos.has(key, hello.random, Date.now())) {
      // A late or replayed copy of a hello that already started a handshake
      // (its cookie still verifies): it must not replace a newer session.
      this.stats.staleHellosDropped++;
      return void this.stats.recordsDropped++;
    }
    if (replacing !== undefined) this.sessions.supersede(replacing, peer);
    if (existing !== undefined && !existing.established) this.sessions.replaceUnfinished(existing, peer);
    if (!this.sessions.makeRoom(peer)) return void this.stats.sessionsRejected++;
    this.stats.handshakesStarted++;
    this.recentHellos.add(key, hello.random, Date.now());
    const hs = new ServerHandshake(hello, fullMessage(HandshakeType.clientHello, frag.messageSeq, frag.body), frag.messageSeq, {
      lookup: (id) => this.opts.psk.lookup(id),
      hint: this.hint,
      random: rand,
    });
    const session = new Session(peer, key, hs, rec.seq, Date.now(), {
      retransmitMs: this.opts.retransmitMs,
      maxRetransmits: this.opts.maxRetransmits,
      mtu: this.opts.mtu,
      send: (d) => this.inner.send(d, peer).catch(() => {}),
      onGiveUp: (s) => this.sessions.fail(s, `no answer to flight 4 (retransmissions exhausted)${s.pendingReason === undefined ? '' : `: ${s.pendingReason}`}`),
    });
    // §4.2.8: an established session stays until the new handshake's Finished verified.
    if (existing?.established === true) this.table.setReplacing(session);
    else this.table.set(session);
  }

  private handleEvents(s: Session, events: readonly SessionEvent[]): void {
    for (const e of events) {
      switch (e.kind) {
        case 'data':
          this.handler(e.data, s.peer);
          break;
        case 'established':
          this.sessions.promote(s);
          this.stats.handshakesOk++;
          this.opts.onEvent?.({ type: 'established', peer: s.peer, identity: e.identity });
          this.sessions.capIdentity(s, e.identity);
          break;
        case 'failed':
          this.sessions.fail(s, e.reason);
          break;
        case 'closed':
          this.table.delete(s);
          this.opts.onEvent?.({ type: 'closed', peer: s.peer, reason: e.reason });
          break;
        case 'dropped':
          this.stats.recordsDropped++;
          if (e.why === 'replay') this.stats.replaysDropped++;
          if (e.why === 'auth') this.stats.badRecordsDropped++;
          break;
        default:
          e satisfies never;
      }
    }
  }

}

function rand(n: number): Uint8Array {
  return new Uint8Array(randomBytes(n));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/**
 * Starts a DTLS 1.2 PSK server (TLS_PSK_WITH_AES_128_CCM_8).
 *
 * @example
 * const server = await createDtlsServer({ bind: { port: 5684 }, psk: await PskStore.fromFile('psk.txt') });
 * server.onMessage((data, peer) => void server.send(data, peer)); // echo
 */
export async function createDtlsServer(options: DtlsServerOptions): Promise<DtlsServer> {
  const resolved = resolveDtlsServerOptions(options); // before binding a socket
  const transport = options.transport ?? (await UdpTransport.bind({ host: options.bind?.host ?? '127.0.0.1', port: options.bind?.port ?? 0 }));
  return new DtlsServer(transport, resolved);
}
