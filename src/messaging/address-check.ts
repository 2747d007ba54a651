/**
 * The endpoint's side of RFC 9175 §2.4 (amplification): which peers have
 * shown they receive at their address, the CoAP ping that proves it, and how
 * many CON retransmissions an unverified address may draw. verified.ts holds
 * the bounded set and the budget arithmetic; this applies them to messages.
 */
import { EMPTY } from '../codec/bytes.js';
import { encodeMessage } from '../codec/message.js';
import { Code, MessageType } from '../codec/numbers.js';
import { peerKey, type Peer } from '../core/transport.js';
import type { Runtime } from '../core/runtime.js';
import type { EndpointStats, PeerCheck } from './endpoint-types.js';
import type { Retransmitter } from './reliability.js';
import { EMPTY_ACK_SIZE } from './request-server.js';
import { resolveAmplification, retransmissionsWithin, VerifiedPeers, type AmplificationLimits, type AmplificationOptions } from './verified.js';

/** What the address check uses of its endpoint. */
export interface AddressCheckIo {
  readonly runtime: Runtime;
  readonly retransmitter: Retransmitter;
  readonly maxRetransmit: number;
  readonly stats: EndpointStats;
  allocateMid(): number;
}

/** Pings a running check may add, one per further request of the peer (see {@link AddressCheck.verify}). */
const EXTRA_PINGS = 8;

/** One address check in flight: its pings and how it ends. */
interface RunningCheck {
  readonly check: Promise<PeerCheck>;
  readonly settle: (r: PeerCheck) => void;
  /** Pings sent beyond the first. */
  extra: number;
  readonly cancels: Array<() => void>;
  done?: boolean;
}

/** A CoAP ping (RFC 7252 §4.3): an empty CON. */
function pingBytes(mid: number): Uint8Array {
  return encodeMessage({ type: MessageType.CON, code: Code.EMPTY, messageId: mid, token: EMPTY, options: [], payload: EMPTY });
}

/** Verified peers and the amplification budget of one endpoint. */
export class AddressCheck {
  /** Undefined when every address counts as verified (amplification: false). */
  private readonly amplification: AmplificationLimits | undefined;
  private readonly verifiedPeers: VerifiedPeers | undefined;
  /** Address checks in flight, by peer key. */
  private readonly verifying = new Map<string, RunningCheck>();

  constructor(
    options: AmplificationOptions | false | undefined,
    private readonly io: AddressCheckIo,
  ) {
    if (options !== false) {
      this.amplification = resolveAmplification(options);
      this.verifiedPeers = new VerifiedPeers(io.runtime, this.amplification);
    }
  }

  /** Whether `peer` has shown it receives at its address (always true with `amplification: false`). */
  isVerified(peer: Peer): boolean {
    return this.verifiedPeers?.has(peer) ?? true;
  }

  /** Vouch for `peer`'s address. */
  markVerified(peer: Peer): void {
    this.verifiedPeers?.add(peer);
  }

  /**
   * See {@link CoapEndpoint.verify}. A request from `peer` while its check
   * runs sends one more ping at once (a new message ID, not retransmitted;
   * any answer verifies), up to {@link EXTRA_PINGS} per check and only when
   * that request's own budget covers it: on a lossy path the check then
   * succeeds within a round trip or two of the peer's traffic instead of
   * waiting ACK_TIMEOUT (2-3 s) for the first ping's retransmission, and a
   * spoofed request still draws no more than its factor.
   */
  verify(peer: Peer, requestBytes: number): Promise<PeerCheck> {
    if (this.isVerified(peer)) return Promise.resolve('verified');
    const key = peerKey(peer);
    const running = this.verifying.get(key);
    if (running !== undefined) {
      this.pingAgain(running, peer, requestBytes);
      return running.check;
    }
    const limits = this.amplification!;
    if (this.verifying.size >= limits.maxPendingVerifications) return Promise.resolve('busy');
    const mid = this.io.allocateMid();
    const ping = pingBytes(mid);
    // Budget: the request's factor, less an empty ACK the endpoint may send meanwhile, less the first ping.
    const n = retransmissionsWithin(limits.factor * requestBytes, EMPTY_ACK_SIZE + ping.length, ping.length, this.io.maxRetransmit);
    let settle!: (r: PeerCheck) => void;
    const check = new Promise<PeerCheck>((resolve) => (settle = resolve)).finally(() => this.verifying.delete(key));
    const entry: RunningCheck = { check, settle, extra: 0, cancels: [] };
    this.verifying.set(key, entry);
    entry.cancels.push(this.io.retransmitter.start(ping, peer, mid, (o) => this.answered(entry, o.kind === 'ack' || o.kind === 'reset' ? 'verified' : 'unanswered'), n));
    return check;
  }

  private pingAgain(entry: RunningCheck, peer: Peer, requestBytes: number): void {
    const ping = pingBytes(0);
    if (entry.extra >= EXTRA_PINGS || ping.length > this.amplification!.factor * requestBytes - EMPTY_ACK_SIZE) return;
    entry.extra++;
    const mid = this.io.allocateMid();
    // Not retransmitted (0): its timeout says nothing, the first ping's schedule decides 'unanswered'.
    entry.cancels.push(this.io.retransmitter.start(pingBytes(mid), peer, mid, (o) => (o.kind === 'ack' || o.kind === 'reset' ? this.answered(entry, 'verified') : undefined), 0));
  }

  private answered(entry: RunningCheck, result: PeerCheck): void {
    if (entry.done) return;
    entry.done = true;
    // The other pings of this check need no answer any more.
    for (const cancel of entry.cancels) cancel();
    entry.settle(result);
  }

  /**
   * Retransmissions allowed for a CON of `size` bytes to `peer`: all of them
   * to a verified address; to an unverified one, those that fit in the
   * budget of a `requestBytes` request after the `spent` bytes (RFC 9175 §2.4).
   */
  retransmitLimit(peer: Peer, requestBytes: number, spent: number, size: number): number {
    const max = this.io.maxRetransmit;
    if (this.amplification === undefined || this.isVerified(peer)) return max;
    const n = retransmissionsWithin(this.amplification.factor * requestBytes, spent, size, max);
    this.io.stats.withheld += max - n;
    return n;
  }
}
