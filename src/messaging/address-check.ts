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

/** Verified peers and the amplification budget of one endpoint. */
export class AddressCheck {
  /** Undefined when every address counts as verified (amplification: false). */
  private readonly amplification: AmplificationLimits | undefined;
  private readonly verifiedPeers: VerifiedPeers | undefined;
  /** Address checks in flight, by peer key. */
  private readonly verifying = new Map<string, Promise<PeerCheck>>();

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

  /** See {@link CoapEndpoint.verify}. */
  verify(peer: Peer, requestBytes: number): Promise<PeerCheck> {
    if (this.isVerified(peer)) return Promise.resolve('verified');
    const key = peerKey(peer);
    const running = this.verifying.get(key);
    if (running !== undefined) return running;
    const limits = this.amplification!;
    if (this.verifying.size >= limits.maxPendingVerifications) return Promise.resolve('busy');
    const mid = this.io.allocateMid();
    const ping = encodeMessage({ type: MessageType.CON, code: Code.EMPTY, messageId: mid, token: EMPTY, options: [], payload: EMPTY });
    // Budget: the request's factor, less an empty ACK the endpoint may send meanwhile, less the first ping.
    const n = retransmissionsWithin(limits.factor * requestBytes, EMPTY_ACK_SIZE + ping.length, ping.length, this.io.maxRetransmit);
    const check = new Promise<PeerCheck>((resolve) => {
      this.io.retransmitter.start(ping, peer, mid, (o) => resolve(o.kind === 'ack' || o.kind === 'reset' ? 'verified' : 'unanswered'), n);
    }).finally(() => this.verifying.delete(key));
    this.verifying.set(key, check);
    return check;
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
