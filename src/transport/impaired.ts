/**
 * A transport wrapper that loses, delays, duplicates and reorders outgoing
 * datagrams, driven by a seeded PRNG so a failing run can be repeated.
 * There is no `tc netem` on our test machines: this is how tests and
 * benchmarks model poor networks in user space.
 */
import { mulberry32 } from '../core/prng.js';
import type { DatagramHandler, Peer, Transport } from '../core/transport.js';

/** Impairment settings; probabilities are 0..1. */
export interface Impairment {
  /** Probability that a datagram is dropped. */
  readonly loss?: number;
  /** Probability that a datagram is sent twice. */
  readonly duplicate?: number;
  /** Fixed delay in ms added to every datagram. */
  readonly delayMs?: number;
  /** Extra random delay in ms (uniform 0..jitterMs); unequal delays reorder datagrams. */
  readonly jitterMs?: number;
  /** Probability that a datagram is held back by `reorderDelayMs`, letting later ones pass. */
  readonly reorder?: number;
  /** How long a reordered datagram is held back. Default 5 ms. */
  readonly reorderDelayMs?: number;
  /** Seed of the PRNG. Default 1. */
  readonly seed?: number;
  /** Drop only datagrams for which this returns true (e.g. only the handshake). Default: all eligible. */
  readonly filter?: (data: Uint8Array, peer: Peer) => boolean;
}

/** Counters of what the impaired transport did. */
export interface ImpairmentStats {
  sent: number;
  dropped: number;
  duplicated: number;
  reordered: number;
}

/** Wraps `inner`, impairing everything sent through it. Received datagrams pass unchanged. */
export class ImpairedTransport implements Transport {
  readonly stats: ImpairmentStats = { sent: 0, dropped: 0, duplicated: 0, reordered: 0 };
  private readonly random: () => number;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly inner: Transport,
    private readonly impairment: Impairment,
  ) {
    this.random = mulberry32(impairment.seed ?? 1);
  }

  send(data: Uint8Array, peer: Peer): Promise<void> {
    const imp = this.impairment;
    this.stats.sent++;
    const eligible = imp.filter === undefined || imp.filter(data, peer);
    if (eligible && this.random() < (imp.loss ?? 0)) {
      this.stats.dropped++;
      return Promise.resolve();
    }
    const copies = eligible && this.random() < (imp.duplicate ?? 0) ? 2 : 1;
    if (copies === 2) this.stats.duplicated++;
    for (let i = 0; i < copies; i++) {
      let delay = (imp.delayMs ?? 0) + (imp.jitterMs ? this.random() * imp.jitterMs : 0);
      if (eligible && this.random() < (imp.reorder ?? 0)) {
        delay += imp.reorderDelayMs ?? 5;
        this.stats.reordered++;
      }
      const copy = Uint8Array.from(data);
      if (delay <= 0) {
        this.inner.send(copy, peer).catch(() => {});
      } else {
        const t = setTimeout(() => {
          this.timers.delete(t);
          this.inner.send(copy, peer).catch(() => {});
        }, delay);
        this.timers.add(t);
      }
    }
    return Promise.resolve();
  }

  onMessage(handler: DatagramHandler): void {
    this.inner.onMessage(handler);
  }

  address(): Peer {
    return this.inner.address();
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.inner.close();
  }
}
