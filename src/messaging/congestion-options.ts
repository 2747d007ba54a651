/**
 * Settings of the congestion controller (congestion.ts) with their
 * defaults, validated once when a controller is made.
 */
import { CoapfwError } from '../errors.js';

/** Controller settings; every one has a default. */
export interface CongestionOptions {
  /** Packets in flight before any RTT sample, and the first window. Default 10 (RFC 6928). */
  readonly initialWindow?: number;
  /** Smallest window, in blocks. Default 1 (below RFC 9002's kMinimumWindow of 2: under heavy loss one block at a time). */
  readonly minWindow?: number;
  /** Largest window, which also bounds the packets tracked in flight. Default 512. */
  readonly maxWindow?: number;
  /** Probe timeout before any RTT sample. Default 2000 ms (RFC 7252 ACK_TIMEOUT). */
  readonly initialRtoMs?: number;
  /** Floor of the probe timeout. Default 50 ms. */
  readonly minRtoMs?: number;
  /** Ceiling of the backed-off probe timeout (RFC 6298 §2.5). Default 60000 ms. */
  readonly maxRtoMs?: number;
  /** Packets sent later that must arrive before one counts as lost (RFC 9002 kPacketThreshold). Default 3. */
  readonly reorderPackets?: number;
  /**
   * Timer granularity (RFC 9002 kGranularity): the least reordering delay
   * tolerated before a packet is declared lost. A JavaScript event loop
   * stalls for milliseconds (GC, a busy peer), so 5 ms rather than 1. Default 5.
   */
  readonly granularityMs?: number;
  /**
   * Queueing delay (smoothed RTT above the smallest RTT seen) above which the
   * window stops growing and shrinks by one packet per RTT instead (the
   * delay-based half of the controller, as TCP Vegas and LEDBAT, RFC 6817).
   * Many devices behind one bottleneck then share it with a short queue
   * rather than filling it to its drop point, where the smallest windows
   * lose everything and starve. Default 25 ms.
   */
  readonly targetDelayMs?: number;
}

const DEFAULTS = { initialWindow: 10, minWindow: 1, maxWindow: 512, initialRtoMs: 2000, minRtoMs: 50, maxRtoMs: 60_000, reorderPackets: 3, granularityMs: 5, targetDelayMs: 25 };

/** Every setting, defaults filled in. */
export type ResolvedCongestion = typeof DEFAULTS;

/** Merge `o` over the defaults and check it (INVALID_ARGUMENT, labelled "congestion:"). */
export function resolveCongestion(o: CongestionOptions): ResolvedCongestion {
  const r = { ...DEFAULTS, ...o };
  const int = (name: keyof ResolvedCongestion, min: number): void => {
    const v = r[name];
    if (!Number.isInteger(v) || v < min) throw new CoapfwError('INVALID_ARGUMENT', `congestion: ${name} must be an integer >= ${min}, got ${v}`);
  };
  int('initialWindow', 1);
  int('minWindow', 1);
  int('maxWindow', 1);
  int('reorderPackets', 1);
  if (r.minWindow > r.maxWindow || r.initialWindow > r.maxWindow) throw new CoapfwError('INVALID_ARGUMENT', 'congestion: minWindow and initialWindow must not exceed maxWindow');
  for (const k of ['initialRtoMs', 'minRtoMs', 'maxRtoMs', 'granularityMs', 'targetDelayMs'] as const) {
    if (!(r[k] > 0)) throw new CoapfwError('INVALID_ARGUMENT', `congestion: ${k} must be > 0, got ${r[k]}`);
  }
  return r;
}
