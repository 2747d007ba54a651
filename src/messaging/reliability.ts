/**
 * Reliable transmission of outgoing Confirmable messages (RFC 7252 §4.2):
 * retransmit with exponential back-off until an ACK or RST with the same
 * message ID arrives, or give up after MAX_RETRANSMIT retransmissions.
 */
import type { Peer } from '../core/transport.js';
import { peerKey } from '../core/transport.js';
import type { TransmissionParams } from './params.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { publish } from '../diagnostics.js';

/** How an outgoing CON ended. */
export type ConOutcome = { kind: 'ack'; data: Uint8Array } | { kind: 'reset' } | { kind: 'timeout' } | { kind: 'cancelled' };

interface OutgoingCon {
  readonly bytes: Uint8Array;
  readonly peer: Peer;
  attempts: number;
  readonly maxRetransmit: number;
  timeoutMs: number;
  timer: TimerHandle;
  readonly done: (outcome: ConOutcome) => void;
}

/** Table of CONs awaiting acknowledgement, keyed by peer and message ID. */
export class Retransmitter {
  private readonly outgoing = new Map<string, OutgoingCon>();
  retransmissions = 0;

  constructor(
    private readonly params: TransmissionParams,
    private readonly runtime: Runtime,
    private readonly send: (bytes: Uint8Array, peer: Peer) => void,
  ) {}

  get size(): number {
    return this.outgoing.size;
  }

  /**
   * Send `bytes` (a CON with message ID `mid`) now and retransmit it up to
   * `maxRetransmit` times (default MAX_RETRANSMIT; fewer to an unverified
   * peer, see verified.ts). `done` is called exactly once.
   */
  start(bytes: Uint8Array, peer: Peer, mid: number, done: (outcome: ConOutcome) => void, maxRetransmit = this.params.maxRetransmit): () => void {
    const key = keyOf(peer, mid);
    // §4.2: the initial timeout is random in [ACK_TIMEOUT, ACK_TIMEOUT * ACK_RANDOM_FACTOR].
    const timeoutMs = this.params.ackTimeoutMs * (1 + this.runtime.random() * (this.params.ackRandomFactor - 1));
    const con: OutgoingCon = { bytes, peer, attempts: 0, maxRetransmit, timeoutMs, timer: undefined, done };
    con.timer = this.runtime.setTimer(timeoutMs, () => this.onTimer(key));
    this.outgoing.set(key, con);
    this.send(bytes, peer);
    return () => this.finish(key, { kind: 'cancelled' });
  }

  /** An ACK or RST arrived with this message ID; true when it matched an outgoing CON. */
  settle(peer: Peer, mid: number, outcome: ConOutcome): boolean {
    return this.finish(keyOf(peer, mid), outcome);
  }

  /** Cancel everything (endpoint closing). */
  cancelAll(): void {
    for (const key of [...this.outgoing.keys()]) this.finish(key, { kind: 'cancelled' });
  }

  private onTimer(key: string): void {
    const con = this.outgoing.get(key);
    if (con === undefined) return;
    if (con.attempts >= con.maxRetransmit) {
      this.finish(key, { kind: 'timeout' });
      return;
    }
    con.attempts++;
    con.timeoutMs *= 2;
    this.retransmissions++;
    publish('retransmission', () => ({ peer: `${con.peer.address}:${con.peer.port}`, attempt: con.attempts }));
    con.timer = this.runtime.setTimer(con.timeoutMs, () => this.onTimer(key));
    this.send(con.bytes, con.peer);
  }

  private finish(key: string, outcome: ConOutcome): boolean {
    const con = this.outgoing.get(key);
    if (con === undefined) return false;
    this.outgoing.delete(key);
    this.runtime.clearTimer(con.timer);
    con.done(outcome);
    return true;
  }
}

function keyOf(peer: Peer, mid: number): string {
  return `${peerKey(peer)}#${mid}`;
}
