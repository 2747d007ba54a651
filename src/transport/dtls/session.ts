/**
 * One DTLS connection as seen by the server: epochs, record sequence numbers,
 * replay windows, handshake reassembly and flight retransmission.
 *
 * - Epoch 0 is plaintext; epoch 1 uses the keys derived from a ClientKeyExchange
 *   (RFC 6347 §4.1). Our epoch-0 record numbers continue from the client's
 *   cookie-bearing ClientHello, as RFC 6347 §4.2.1 recommends for a stateless
 *   HelloVerifyRequest.
 * - An epoch-0 ClientKeyExchange is unauthenticated and may be forged by anyone
 *   who can spoof the client's address: each one with a known identity is a
 *   candidate with its own keys (handshake.ts) until the client's epoch-1
 *   Finished authenticates under one of them and selects it.
 * - Epoch-1 records pass the replay window (§4.1.2.6) and are authenticated
 *   before the window is updated; failures are counted and dropped (§4.1.2.7).
 *   One exception: a Finished that fails authentication in the same datagram
 *   as a ChangeCipherSpec and the ClientKeyExchange whose keys it fails under
 *   (flight 5 normally travels in one datagram) means the two sides derived
 *   different keys, a wrong PSK, and we end the handshake with a fatal
 *   bad_record_mac alert (§4.1.2.7 allows alerts if they are fatal). An unknown
 *   identity takes the same path (handshake.ts gives it keys from a random
 *   PSK, RFC 4279 §2), so a client cannot tell the two apart. Any other
 *   failing record may be injected by anyone: it is dropped, and if the Finished
 *   never authenticates the handshake timeout ends the session with
 *   {@link Session.pendingReason}.
 * - Plaintext (epoch 0) alerts during the handshake are unauthenticated, so a
 *   fatal one is ignored too (same reasoning); the handshake timeout ends it.
 * - Flight 4 is retransmitted on a timer with doubling timeout (§4.2.4.1); the
 *   final flight only when the client repeats its Finished (§4.2.4); the
 *   writing and retransmitting is session-writer.ts.
 */
import type { Peer } from '../../core/transport.js';
import type { ServerHandshake } from './handshake.js';
import { DecodeError, Reassembler, parseFragments } from './messages.js';
import { AlertDescription, AlertLevel, Ccm8Cipher, ContentType, ReplayWindow, type DtlsRecord } from './record.js';
import { SessionWriter } from './session-writer.js';

/** What a session reports to the server after a datagram. */
export type SessionEvent =
  | { readonly kind: 'data'; readonly data: Uint8Array }
  | { readonly kind: 'established'; readonly identity: string }
  | { readonly kind: 'failed'; readonly reason: string }
  | { readonly kind: 'closed'; readonly reason: string }
  | { readonly kind: 'dropped'; readonly why: 'replay' | 'auth' | 'unexpected' | 'malformed' };

/** Timing and size knobs of a session. */
export interface SessionOptions {
  readonly retransmitMs: number;
  readonly maxRetransmits: number;
  readonly mtu: number;
  /** Sends one datagram to the session's peer; never rejects. */
  readonly send: (datagram: Uint8Array) => Promise<void>;
  /** Called when flight 4 was retransmitted `maxRetransmits` times without answer. */
  readonly onGiveUp: (session: Session) => void;
}

/** Server-side state of one peer. */
export class Session {
  lastActivity: number;
  readonly createdAt: number;
  private readonly window1 = new ReplayWindow();
  private readCipher: Ccm8Cipher | undefined;
  /** Epoch-1 ciphers of each ClientKeyExchange candidate, until the Finished selects one. */
  private readonly candidates = new Map<number, { read: Ccm8Cipher; write: Ccm8Cipher }>();
  /** The candidate whose ClientKeyExchange came in the datagram being processed. */
  private datagramCandidate: number | undefined;
  private readEpoch = 0;
  private readonly reassembler = new Reassembler();
  private readonly writer: SessionWriter;
  private closed = false;
  /** Set while processing a datagram whose ChangeCipherSpec started epoch 1. */
  private ccsInDatagram = false;
  /** Set once a datagram carried a ClientKeyExchange and a ChangeCipherSpec: flight 4 arrived. */
  private flight5Seen = false;
  private authFailures = 0;
  private readonly ignoredAlerts: number[] = [];

  constructor(
    readonly peer: Peer,
    readonly key: string,
    readonly handshake: ServerHandshake,
    firstRecordSeq: number,
    now: number,
    opts: SessionOptions,
  ) {
    this.createdAt = now;
    this.lastActivity = now;
    this.writer = new SessionWriter(firstRecordSeq, handshake.flight4, {
      ...opts,
      waiting: () => !(this.closed || this.flight5Seen || this.established),
      giveUp: () => opts.onGiveUp(this),
    });
    this.writer.sendFlight();
    this.writer.arm();
  }

  /** True once both Finished messages were exchanged. */
  get established(): boolean {
    return this.handshake.state === 'established';
  }

  /** Processes the records of one datagram from this peer. */
  receive(records: readonly DtlsRecord[], now: number): SessionEvent[] {
    const events: SessionEvent[] = [];
    this.ccsInDatagram = false;
    this.datagramCandidate = undefined;
    for (const rec of records) {
      if (this.closed) break;
      if (rec.epoch === 0) this.receivePlain(rec, events);
      else if (rec.epoch === 1) this.receiveProtected(rec, events);
      else events.push({ kind: 'dropped', why: 'unexpected' });
    }
    if (events.some((e) => e.kind !== 'dropped')) this.lastActivity = now;
    return events;
  }

  /**
   * Why an unfinished handshake may be stuck, for the timeout's reason: records
   * that failed authentication while we awaited the client's Finished, or
   * ignored unauthenticated fatal alerts. Undefined when nothing suspicious came.
   */
  get pendingReason(): string | undefined {
    const parts: string[] = [];
    if (this.authFailures > 0) {
      const why = this.handshake.candidateIdentities.map((_, i) => this.handshake.candidateFailure(i)).join(' or ');
      parts.push(`Finished never authenticated (${why}); ${this.authFailures} record(s) failed authentication`);
    }
    if (this.handshake.ignoredKeyExchanges.length > 0) parts.push(`ignored ClientKeyExchange: ${this.handshake.ignoredKeyExchanges.join('; ')}`);
    if (this.ignoredAlerts.length > 0) parts.push(`ignored unauthenticated fatal alert(s) ${this.ignoredAlerts.join(', ')}`);
    return parts.length === 0 ? undefined : parts.join('; ');
  }

  /** True once the client's ChangeCipherSpec switched our reading to epoch 1. */
  get readsEpoch1(): boolean {
    return this.readEpoch === 1;
  }

  /** True when `rec` authenticates under this session's epoch-1 read keys; changes no state. */
  authenticates(rec: DtlsRecord): boolean {
    return rec.epoch === 1 && this.readEpoch === 1 && this.readCipher?.open(rec) !== undefined;
  }

  /** Encrypts application data into one datagram (RFC 6347 §4.1: one record). */
  seal(data: Uint8Array): Uint8Array {
    return this.writer.record(ContentType.applicationData, 1, data);
  }

  /** Sends a close_notify (warning) or a fatal alert, then stops all timers. Resolves once sent. */
  close(description: number = AlertDescription.closeNotify): Promise<void> {
    if (this.closed) return Promise.resolve();
    const level = description === AlertDescription.closeNotify ? AlertLevel.warning : AlertLevel.fatal;
    // Our records are protected only after we sent ChangeCipherSpec (flight 6).
    const sent = this.writer.send(ContentType.alert, this.established ? 1 : 0, new Uint8Array([level, description]));
    this.dispose();
    return sent;
  }

  /** Stops timers; the session sends nothing more. */
  dispose(): void {
    this.closed = true;
    this.writer.stop();
  }

  private receivePlain(rec: DtlsRecord, events: SessionEvent[]): void {
    // Epoch 0 is unauthenticated: after the handshake only a new ClientHello
    // (handled by the server, never here) is meaningful, so ignore the rest.
    // Before, even after a ChangeCipherSpec, a ClientKeyExchange may still come
    // (the first one may have been forged), so handshake records are read.
    if (this.established) return void events.push({ kind: 'dropped', why: 'unexpected' });
    switch (rec.type) {
      case ContentType.handshake:
        return this.receiveHandshake(rec.fragment, events);
      case ContentType.changeCipherSpec:
        if (rec.fragment.length !== 1 || rec.fragment[0] !== 1) return void events.push({ kind: 'dropped', why: 'malformed' });
        this.handshake.onChangeCipherSpec();
        if (this.handshake.state === 'awaitFinished') {
          this.readEpoch = 1;
          this.ccsInDatagram = true;
          // ClientKeyExchange and ChangeCipherSpec in one datagram: flight 5, so the client has our
          // flight 4. (A lone forged ClientKeyExchange or ChangeCipherSpec does not stop the timer.)
          if (this.datagramCandidate !== undefined) {
            this.flight5Seen = true;
            this.writer.stop();
          }
        }
        return;
      case ContentType.alert:
        // §4.1.2.7: anyone can forge a plaintext alert; ending the handshake on
        // it would let an off-path attacker abort it. Note it and let the
        // handshake timeout clean up if the peer really gave up.
        if (rec.fragment[0] === AlertLevel.fatal && this.ignoredAlerts.length < 8) this.ignoredAlerts.push(rec.fragment[1] ?? -1);
        return void events.push({ kind: 'dropped', why: 'unexpected' });
      default:
        return void events.push({ kind: 'dropped', why: 'unexpected' });
    }
  }

  private receiveProtected(rec: DtlsRecord, events: SessionEvent[]): void {
    if (this.readEpoch !== 1) return void events.push({ kind: 'dropped', why: 'unexpected' });
    if (!this.window1.check(rec.seq)) return void events.push({ kind: 'dropped', why: 'replay' });
    if (this.readCipher === undefined) return this.receiveCandidateRecord(rec, events);
    const plain = this.readCipher.open(rec);
    if (plain === undefined) return void events.push({ kind: 'dropped', why: 'auth' });
    this.window1.mark(rec.seq);
    switch (rec.type) {
      case ContentType.handshake:
        return this.receiveHandshake(plain, events);
      case ContentType.applicationData:
        if (!this.established) return void events.push({ kind: 'dropped', why: 'unexpected' });
        return void events.push({ kind: 'data', data: plain });
      case ContentType.alert:
        if (plain[1] === AlertDescription.closeNotify || plain[0] === AlertLevel.fatal) {
          // RFC 5246 §7.2.1: answer close_notify with close_notify.
          if (plain[1] === AlertDescription.closeNotify) void this.close();
          else this.dispose();
          events.push({ kind: 'closed', reason: plain[1] === AlertDescription.closeNotify ? 'peer closed the session (close_notify)' : `peer sent fatal alert ${plain[1]}` });
        }
        return;
      default:
        return void events.push({ kind: 'dropped', why: 'unexpected' });
    }
  }

  /** An epoch-1 record before the Finished selected a candidate: try each candidate's keys. */
  private receiveCandidateRecord(rec: DtlsRecord, events: SessionEvent[]): void {
    const opened: number[] = [];
    let plain: Uint8Array | undefined;
    for (const [index, c] of this.candidates) {
      const p = c.read.open(rec);
      if (p === undefined) continue;
      opened.push(index);
      plain ??= p;
    }
    if (plain === undefined) {
      const mine = this.datagramCandidate;
      if (this.ccsInDatagram && mine !== undefined) {
        // ClientKeyExchange, ChangeCipherSpec and a Finished that does not authenticate
        // under that ClientKeyExchange's keys, all in one datagram: the keys differ.
        // An unknown identity ends here too, with the same alert (its keys come from a random PSK, RFC 4279 §2).
        events.push({ kind: 'failed', reason: `client Finished did not authenticate (${this.handshake.candidateFailure(mine)})` });
        void this.close(AlertDescription.badRecordMac);
        return;
      }
      if (this.handshake.state === 'awaitFinished') this.authFailures++;
      return void events.push({ kind: 'dropped', why: 'auth' });
    }
    this.window1.mark(rec.seq);
    // Only the Finished is expected before the handshake completes.
    if (rec.type !== ContentType.handshake) return void events.push({ kind: 'dropped', why: 'unexpected' });
    this.receiveHandshake(plain, events, opened);
  }

  private receiveHandshake(fragment: Uint8Array, events: SessionEvent[], authenticatedBy: readonly number[] = []): void {
    let frags;
    try {
      frags = parseFragments(fragment);
    } catch (e) {
      if (e instanceof DecodeError) return void events.push({ kind: 'dropped', why: 'malformed' });
      throw e;
    }
    for (const f of frags) {
      const body = this.reassembler.add(f);
      if (body === undefined) continue;
      const step = this.handshake.onHandshake(f.msgType, f.messageSeq, body, authenticatedBy);
      switch (step.kind) {
        case 'none':
          break;
        case 'retransmit':
          this.writer.sendFlight();
          break;
        case 'refuse-renegotiation':
          void this.writer.send(ContentType.alert, 1, new Uint8Array([AlertLevel.warning, AlertDescription.noRenegotiation]));
          break;
        case 'keys':
          if (!this.candidates.has(step.index)) {
            this.candidates.set(step.index, {
              read: new Ccm8Cipher(step.keys.clientKey, step.keys.clientSalt),
              write: new Ccm8Cipher(step.keys.serverKey, step.keys.serverSalt),
            });
          }
          this.datagramCandidate = step.index;
          break;
        case 'established': {
          const chosen = this.candidates.get(step.index)!;
          this.readCipher = chosen.read;
          this.candidates.clear();
          this.writer.finish(chosen.write, step.flight);
          events.push({ kind: 'established', identity: this.handshake.identity ?? '' });
          break;
        }
        case 'failed':
          events.push({ kind: 'failed', reason: step.reason });
          void this.close(step.alert);
          return;
        default:
          step satisfies never;
      }
    }
  }
}
