/**
 * Server side of the DTLS 1.2 PSK handshake (RFC 6347 §4.2, RFC 4279 §2), for
 * the RFC 7925 profile: one cipher suite, TLS_PSK_WITH_AES_128_CCM_8 (RFC 6655).
 *
 *   Client                                   Server
 *   ClientHello (no cookie)      -------->
 *                                <--------   HelloVerifyRequest   (stateless, server.ts)
 *   ClientHello (cookie)         -------->   ── this class starts here ──
 *                                <--------   ServerHello, [ServerKeyExchange(hint)],
 *                                            ServerHelloDone                     (flight 4)
 *   ClientKeyExchange(identity),
 *   ChangeCipherSpec, Finished   -------->
 *                                <--------   ChangeCipherSpec, Finished          (flight 6)
 *
 * The class is pure: it takes parsed messages and returns flights to send; the
 * session (session.ts) owns records, epochs and timers. Per RFC 6347 §4.2.2 the
 * server's message_seq starts at the message_seq of the cookie-bearing
 * ClientHello, because the HelloVerifyRequest kept no state.
 * Extensions: extended_master_secret (RFC 7627) and renegotiation_info
 * (RFC 5746, we never renegotiate) are echoed when offered; nothing else is.
 */
import { timingSafeEqual } from 'node:crypto';
import { equalBytes } from '@noble/curves/utils.js';
import {
  Ext,
  HandshakeType,
  TLS_EMPTY_RENEGOTIATION_INFO_SCSV,
  TLS_PSK_WITH_AES_128_CCM_8,
  fullMessage,
  parseClientKeyExchange,
  pskHintBody,
  serverHelloBody,
  type ClientHello,
} from './messages.js';
import { pskCandidate, type Candidate } from './psk-candidate.js';
import { concatBytes, sha256, verifyData, type CcmKeys } from './prf.js';
import { AlertDescription, ContentType, DTLS12 } from './record.js';

/** A record to send as part of a flight; its sequence number is assigned at send time. */
export interface FlightRecord {
  readonly type: number;
  readonly epoch: 0 | 1;
  readonly body: Uint8Array;
}

/** Outcome of one handshake step. */
export type HandshakeStep =
  | { readonly kind: 'none' }
  // A ClientKeyExchange with a known identity became (or repeated) candidate `index`: its epoch-1 keys.
  | { readonly kind: 'keys'; readonly index: number; readonly keys: CcmKeys }
  | { readonly kind: 'retransmit' } // the peer repeated its last flight: repeat ours (RFC 6347 §4.2.4)
  | { readonly kind: 'refuse-renegotiation' } // a ClientHello inside the session
  | { readonly kind: 'established'; readonly index: number; readonly flight: readonly FlightRecord[] }
  | { readonly kind: 'failed'; readonly alert: number; readonly reason: string };

/** Named states of the server handshake. */
export type HandshakeState = 'awaitKeyExchange' | 'awaitChangeCipherSpec' | 'awaitFinished' | 'established' | 'failed';

/** What the handshake needs from the server. */
export interface HandshakeOptions {
  /** PSK lookup by identity (RFC 4279 §5.1: identities are UTF-8). */
  readonly lookup: (identity: string) => Uint8Array | undefined;
  /** Optional psk_identity_hint; RFC 7925 §4.2: none by default. */
  readonly hint?: Uint8Array | undefined;
  readonly random: (n: number) => Uint8Array;
}

/**
 * At most this many distinct ClientKeyExchange messages are kept as candidates:
 * epoch-0 records are unauthenticated, so a forged one must not displace the
 * genuine client's (blind off-path injection, RFC 6347 §4.1.2.7 reasoning).
 */
export const MAX_KEY_EXCHANGE_CANDIDATES = 4;

const dec = new TextDecoder('utf-8', { fatal: false });

/** Checks whether a ClientHello can be served at all; returns an alert and reason if not. */
export function checkClientHello(hello: ClientHello): { alert: number; reason: string } | undefined {
  // DTLS versions count down: 1.0 = 0xfeff, 1.2 = 0xfefd.
  if (hello.clientVersion > DTLS12) return { alert: AlertDescription.protocolVersion, reason: 'client does not offer DTLS 1.2' };
  if (!hello.cipherSuites.includes(TLS_PSK_WITH_AES_128_CCM_8)) {
    return { alert: AlertDescription.handshakeFailure, reason: 'client does not offer TLS_PSK_WITH_AES_128_CCM_8' };
  }
  if (!hello.compressionMethods.includes(0)) return { alert: AlertDescription.illegalParameter, reason: 'no null compression' };
  const ri = hello.extensions.get(Ext.renegotiationInfo);
  // RFC 5746 §3.6: on an initial handshake renegotiated_connection must be empty.
  if (ri !== undefined && (ri.length !== 1 || ri[0] !== 0)) {
    return { alert: AlertDescription.handshakeFailure, reason: 'non-empty renegotiation_info' };
  }
  return undefined;
}

/**
 * One server handshake, from the verified ClientHello to the Finished exchange.
 *
 * Epoch-0 records are unauthenticated and the ClientKeyExchange message_seq is
 * predictable, so a ClientKeyExchange commits nothing: a malformed one is
 * dropped silently and noted for the timeout reason; every well-formed one
 * becomes a candidate (up to {@link MAX_KEY_EXCHANGE_CANDIDATES}). The client's
 * Finished, in epoch 1, selects the candidate whose keys authenticated it and
 * whose verify_data matches (RFC 5246 §7.4.9).
 *
 * An unknown identity must not be told apart from a known one with a wrong key
 * (RFC 4279 §2: the server "MAY continue the protocol as if the PSK identity
 * existed but the key was incorrect"): its candidate gets keys derived, with
 * the same computation, from a random stand-in PSK, so its Finished fails
 * exactly as a wrong key's does, with the same alert after the same work.
 * Only the server's own reason text (events, never the wire) says which it was.
 */
export class ServerHandshake {
  state: HandshakeState = 'awaitKeyExchange';
  /** The PSK identity of the selected candidate (once established). */
  identity: string | undefined;
  /** First flight (4), built by the constructor. */
  readonly flight4: readonly FlightRecord[];
  /** Why ClientKeyExchange messages were ignored (capped), for the handshake timeout's reason. */
  readonly ignoredKeyExchanges: string[] = [];

  private transcript: Uint8Array[] = [];
  private candidates: Candidate[] = [];
  private readonly clientSeq0: number;
  private nextSendSeq: number;
  private readonly ems: boolean;
  private readonly serverRandom: Uint8Array;

  constructor(
    private readonly hello: ClientHello,
    helloMessage: Uint8Array,
    helloSeq: number,
    private readonly opts: HandshakeOptions,
  ) {
    this.clientSeq0 = helloSeq;
    this.nextSendSeq = helloSeq;
    this.ems = hello.extensions.has(Ext.extendedMasterSecret);
    this.serverRandom = opts.random(32);
    this.transcript.push(helloMessage); // RFC 6347 §4.2.6: the cookie-less hello and HVR are not hashed
    const ext: Array<[number, Uint8Array]> = [];
    if (hello.extensions.has(Ext.renegotiationInfo) || hello.cipherSuites.includes(TLS_EMPTY_RENEGOTIATION_INFO_SCSV)) {
      ext.push([Ext.renegotiationInfo, new Uint8Array([0])]); // RFC 5746 §3.6
    }
    if (this.ems) ext.push([Ext.extendedMasterSecret, new Uint8Array(0)]); // RFC 7627 §5.1
    const msgs = [this.message(HandshakeType.serverHello, serverHelloBody(this.serverRandom, TLS_PSK_WITH_AES_128_CCM_8, ext))];
    if (opts.hint !== undefined) msgs.push(this.message(HandshakeType.serverKeyExchange, pskHintBody(opts.hint)));
    msgs.push(this.message(HandshakeType.serverHelloDone, new Uint8Array(0)));
    this.flight4 = msgs.map((body) => ({ type: ContentType.handshake, epoch: 0, body }));
  }

  /** The client random of the ClientHello this handshake answers. */
  get clientRandom(): Uint8Array {
    return this.hello.random;
  }

  /** Identities of the candidate ClientKeyExchange messages, in arrival order. */
  get candidateIdentities(): string[] {
    return this.candidates.map((c) => c.identity);
  }

  /**
   * For the server's own failure reasons (never sent): why candidate `index`
   * failed to authenticate, "unknown PSK identity "x"" or "wrong PSK for identity "x"?".
   */
  candidateFailure(index: number): string {
    const c = this.candidates[index];
    if (c === undefined) return 'no ClientKeyExchange';
    return c.known ? `wrong PSK for identity ${JSON.stringify(c.identity)}?` : `unknown PSK identity ${JSON.stringify(c.identity)}`;
  }

  /**
   * Feeds one complete handshake message. For a Finished, `authenticatedBy`
   * lists the candidates whose epoch-1 keys authenticated its record.
   */
  onHandshake(msgType: number, messageSeq: number, body: Uint8Array, authenticatedBy: readonly number[] = []): HandshakeStep {
    const expected = msgType === HandshakeType.clientKeyExchange ? this.clientSeq0 + 1 : this.clientSeq0 + 2;
    switch (this.state) {
      case 'awaitKeyExchange':
        if (msgType === HandshakeType.clientHello && messageSeq === this.clientSeq0) return { kind: 'retransmit' };
        if (msgType !== HandshakeType.clientKeyExchange || messageSeq !== expected) return { kind: 'none' };
        return this.onKeyExchange(fullMessage(msgType, messageSeq, body), body);
      case 'awaitChangeCipherSpec':
      case 'awaitFinished':
        // The ClientKeyExchange that moved us here may have been forged: the client may still lack flight 4.
        if (msgType === HandshakeType.clientHello && messageSeq === this.clientSeq0) return { kind: 'retransmit' };
        // A ClientKeyExchange seen earlier may have been forged: later ones are candidates too.
        if (msgType === HandshakeType.clientKeyExchange && messageSeq === expected) return this.onKeyExchange(fullMessage(msgType, messageSeq, body), body);
        // A Finished before ChangeCipherSpec cannot be read anyway.
        if (this.state !== 'awaitFinished' || msgType !== HandshakeType.finished || messageSeq !== expected) return { kind: 'none' };
        return this.onFinished(fullMessage(msgType, messageSeq, body), body, authenticatedBy);
      case 'established':
        // RFC 6347 §4.2.4: a repeated Finished means our last flight was lost.
        if (msgType === HandshakeType.finished && messageSeq === this.clientSeq0 + 2) return { kind: 'retransmit' };
        // RFC 7925 §13 / RFC 5746 §4.4: we do not renegotiate; say so with a warning.
        if (msgType === HandshakeType.clientHello) return { kind: 'refuse-renegotiation' };
        return { kind: 'none' };
      case 'failed':
        return { kind: 'none' };
      default:
        return assertNever(this.state);
    }
  }

  /** The client's ChangeCipherSpec: from now on its records are in epoch 1. */
  onChangeCipherSpec(): HandshakeStep {
    if (this.state !== 'awaitChangeCipherSpec') return { kind: 'none' };
    this.state = 'awaitFinished';
    return { kind: 'none' };
  }

  private onKeyExchange(msg: Uint8Array, body: Uint8Array): HandshakeStep {
    const known = this.candidates.findIndex((c) => equalBytes(c.message, msg));
    if (known >= 0) return { kind: 'keys', index: known, keys: this.candidates[known]!.keys };
    let idBytes: Uint8Array;
    try {
      idBytes = parseClientKeyExchange(body);
    } catch {
      return this.ignore('malformed ClientKeyExchange');
    }
    const identity = dec.decode(idBytes);
    if (this.candidates.length >= MAX_KEY_EXCHANGE_CANDIDATES) return this.ignore(`more than ${MAX_KEY_EXCHANGE_CANDIDATES} ClientKeyExchange candidates`);
    const { lookup, random } = this.opts;
    const c = pskCandidate(identity, msg, { lookup, random, ems: this.ems, transcript: this.transcript, clientRandom: this.hello.random, serverRandom: this.serverRandom });
    this.candidates.push(c);
    if (this.state === 'awaitKeyExchange') this.state = 'awaitChangeCipherSpec';
    return { kind: 'keys', index: this.candidates.length - 1, keys: c.keys };
  }

  private onFinished(msg: Uint8Array, body: Uint8Array, authenticatedBy: readonly number[]): HandshakeStep {
    for (const index of authenticatedBy) {
      const c = this.candidates[index];
      if (c === undefined) continue;
      const transcript = [...this.transcript, c.message];
      const expected = verifyData(c.master, 'client', sha256(concatBytes(...transcript)));
      if (body.length !== expected.length || !timingSafeEqual(body, expected)) continue;
      transcript.push(msg);
      const ours = verifyData(c.master, 'server', sha256(concatBytes(...transcript)));
      this.identity = c.identity;
      this.state = 'established';
      const flight: FlightRecord[] = [
        { type: ContentType.changeCipherSpec, epoch: 0, body: new Uint8Array([1]) },
        { type: ContentType.handshake, epoch: 1, body: this.message(HandshakeType.finished, ours) },
      ];
      this.forget(); // the record keys live in the session; nothing here is needed again
      return { kind: 'established', index, flight };
    }
    // The record authenticated under a candidate's keys, so its sender knows that PSK: a real failure.
    const who = authenticatedBy.map((i) => this.candidateFailure(i)).join(', ');
    return this.fail(AlertDescription.decryptError, `Finished did not verify (${who})`);
  }

  private message(type: number, body: Uint8Array): Uint8Array {
    const m = fullMessage(type, this.nextSendSeq++, body);
    this.transcript.push(m);
    return m;
  }

  /** True while a master secret or the transcript is still held (tests: they are dropped once done). */
  get holdsSecrets(): boolean {
    return this.candidates.length > 0 || this.transcript.length > 0;
  }

  /** Zeroes the master secrets and drops the transcript. */
  private forget(): void {
    for (const c of this.candidates) c.master.fill(0);
    this.candidates = [];
    this.transcript = [];
  }

  private ignore(reason: string): HandshakeStep {
    if (this.ignoredKeyExchanges.length < 4) this.ignoredKeyExchanges.push(reason);
    return { kind: 'none' };
  }

  private fail(alert: number, reason: string): HandshakeStep {
    this.state = 'failed';
    this.forget();
    return { kind: 'failed', alert, reason };
  }
}

function assertNever(x: never): never {
  throw new Error(`unhandled handshake state ${String(x)}`);
}
