/**
 * Amplification limits for unverified addresses (RFC 9175 §2.4): a UDP
 * source address can be spoofed, so until a peer has shown it receives what
 * we send to it, the endpoint sends it no more than `factor` times the bytes
 * of its request beyond the first response: no CON retransmission, no Observe
 * notification that the budget does not cover.
 *
 * An address counts as verified when it answered a CON we sent it (an ACK or
 * RST with our message ID, or a response with our token: it received that
 * datagram), or when a server component vouches for it (a valid RFC 9175
 * Echo value). The proof is as strong as the value guessed: a random 8-byte
 * token, or a 16-bit message ID; the latter only ever unlocks the
 * retransmissions of one peer, never a larger first response. Verified
 * addresses are kept in a bounded table whose entries expire unless the peer
 * keeps answering (each answer renews it).
 */
import { CoapfwError } from '../errors.js';
import { peerKey, type Peer } from '../core/transport.js';
import type { Runtime } from '../core/runtime.js';

/** How unverified peers are limited; every field has a safe default. */
export interface AmplificationOptions {
  /** Bytes sent to an unverified peer beyond the first response, as a multiple of its request. Default 3 (RFC 9175 §2.4). */
  readonly factor?: number;
  /** Verified addresses remembered, least recently renewed dropped first. Default 10,000. */
  readonly maxVerifiedPeers?: number;
  /**
   * How long an address stays verified after it last answered us. Default
   * 25 h: longer than the 24 h within which an observer must confirm a
   * notification (RFC 7641 §4.5), so a live observer never lapses.
   */
  readonly verifiedLifetimeMs?: number;
  /** Address checks (CoAP pings, see {@link CoapEndpoint.verify}) in flight at once. Default 64. */
  readonly maxPendingVerifications?: number;
}

/** The resolved settings. */
export interface AmplificationLimits {
  readonly factor: number;
  readonly maxVerifiedPeers: number;
  readonly verifiedLifetimeMs: number;
  readonly maxPendingVerifications: number;
}

/** Defaults applied, validated once at the boundary. */
export function resolveAmplification(o: AmplificationOptions = {}): AmplificationLimits {
  const r = {
    factor: o.factor ?? 3,
    maxVerifiedPeers: o.maxVerifiedPeers ?? 10_000,
    verifiedLifetimeMs: o.verifiedLifetimeMs ?? 25 * 3600_000,
    maxPendingVerifications: o.maxPendingVerifications ?? 64,
  };
  if (!(r.factor >= 1)) throw new CoapfwError('INVALID_ARGUMENT', `amplification: factor must be >= 1, got ${r.factor}`);
  for (const k of ['maxVerifiedPeers', 'maxPendingVerifications'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 1) throw new CoapfwError('INVALID_ARGUMENT', `amplification: ${k} must be an integer >= 1, got ${r[k]}`);
  }
  if (!(r.verifiedLifetimeMs > 0)) throw new CoapfwError('INVALID_ARGUMENT', `amplification: verifiedLifetimeMs must be > 0, got ${r.verifiedLifetimeMs}`);
  return r;
}

/** Verified peer addresses (address and port), bounded and expiring. */
export class VerifiedPeers {
  /** Peer key -> expiry, least recently renewed first. */
  private readonly expiry = new Map<string, number>();

  constructor(
    private readonly runtime: Runtime,
    private readonly limits: AmplificationLimits,
  ) {}

  get size(): number {
    return this.expiry.size;
  }

  has(peer: Peer): boolean {
    const key = peerKey(peer);
    const exp = this.expiry.get(key);
    if (exp === undefined) return false;
    if (exp > this.runtime.now()) return true;
    this.expiry.delete(key);
    return false;
  }

  /** Mark `peer` verified (again) for the lifetime. */
  add(peer: Peer): void {
    const key = peerKey(peer);
    const now = this.runtime.now();
    const exp = this.expiry.get(key);
    // Renewed a moment ago (every response of a flow renews): keep its place rather than
    // move it per datagram; the order stays least recently renewed first, to an eighth of the lifetime.
    if (exp !== undefined && exp - now >= (this.limits.verifiedLifetimeMs * 7) / 8) return;
    this.expiry.delete(key);
    while (this.expiry.size >= this.limits.maxVerifiedPeers) this.expiry.delete(this.expiry.keys().next().value!);
    this.expiry.set(key, now + this.limits.verifiedLifetimeMs);
  }
}

/**
 * How many times a CON of `size` bytes may be retransmitted to an unverified
 * peer: as many as fit in `budget` bytes beyond the `spent` ones, at most `max`.
 */
export function retransmissionsWithin(budget: number, spent: number, size: number, max: number): number {
  return Math.max(0, Math.min(max, Math.floor((budget - spent) / size)));
}
