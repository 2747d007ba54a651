import type { DatagramHandler, Peer, Transport } from '../core/transport.js';

/**
 * An in-memory datagram network: each {@link MemTransport} has an address,
 * and a datagram sent to it is delivered on a microtask. `filter` drops
 * datagrams, `log` records every one.
 */
export class MemNetwork {
  readonly nodes = new Map<string, MemTransport>();
  /** Every datagram sent, for inspection. */
  readonly log: Array<{ from: Peer; to: Peer; data: Uint8Array }> = [];
  /** Return false to drop a datagram. */
  filter: (from: Peer, to: Peer, data: Uint8Array) => boolean = () => true;

  /** A transport bound to `address`:`port` on this network. */
  endpoint(address: string, port: number): MemTransport {
    const t = new MemTransport(this, { address, port });
    this.nodes.set(`${address}:${port}`, t);
    return t;
  }
}

/** One node of a {@link MemNetwork}. */
export class MemTransport implements Transport {
  handler: DatagramHandler = () => {};
  closed = false;
  constructor(private readonly net: MemNetwork, private readonly self: Peer) {}
  send(data: Uint8Array, peer: Peer): Promise<void> {
    const copy = Uint8Array.from(data);
    this.net.log.push({ from: this.self, to: peer, data: copy });
    if (!this.net.filter(this.self, peer, copy)) return Promise.resolve();
    const dst = this.net.nodes.get(`${peer.address}:${peer.port}`);
    if (dst && !dst.closed) queueMicrotask(() => dst.handler(copy, this.self));
    return Promise.resolve();
  }
  /** Inject a datagram as if `from` had sent it. */
  inject(data: Uint8Array, from: Peer): void {
    this.handler(data, from);
  }
  onMessage(handler: DatagramHandler): void {
    this.handler = handler;
  }
  address(): Peer {
    return this.self;
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** Resolves after pending microtask deliveries (one macrotask turn). */
export const flush = (): Promise<void> => new Promise((r) => setImmediate(r));
