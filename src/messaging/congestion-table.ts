/**
 * Congestion controllers (congestion.ts) for many peers, one per peer, for
 * a server that paces every client separately.
 */
import type { Runtime } from '../core/runtime.js';
import { CongestionController, type CongestionOptions } from './congestion.js';

/**
 * One controller per peer, bounded in count: the least recently used is
 * dropped past `maxPeers`, and one idle past `idleMs` starts afresh (its
 * estimate no longer describes the path, RFC 8085 §3.1.1).
 */
export class CongestionTable {
  private readonly peers = new Map<string, { ctl: CongestionController; usedAt: number }>();

  constructor(
    private readonly runtime: Pick<Runtime, 'now'>,
    private readonly options: CongestionOptions & { readonly maxPeers?: number; readonly idleMs?: number } = {},
  ) {}

  /** The controller for `key` (a peer key), created on first use. */
  get(key: string): CongestionController {
    const now = this.runtime.now();
    const e = this.peers.get(key);
    this.peers.delete(key);
    const fresh = e === undefined || now - e.usedAt > (this.options.idleMs ?? 600_000);
    const ctl = fresh ? new CongestionController(this.runtime, this.options) : e.ctl;
    this.peers.set(key, { ctl, usedAt: now });
    const max = this.options.maxPeers ?? 10_000;
    while (this.peers.size > max) this.peers.delete(this.peers.keys().next().value!);
    return ctl;
  }

  get size(): number {
    return this.peers.size;
  }
}
