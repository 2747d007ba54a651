/**
 * Congestion control for block transfers over UDP (RFC 8085 §3.1), pure and
 * clocked by an injected Runtime: a TCP-friendly window (RFC 8085 §3.1.2
 * "bulk transfer": a TCP-like window, paced) with the loss detection of
 * RFC 9002, so that loss is recovered in about one round trip.
 *
 * - RTT: RFC 6298 §2 (SRTT, RTTVAR, alpha 1/8, beta 1/4), Karn's rule (§3):
 *   no sample from a block that was asked for twice. Every block answers a
 *   known request sent at a known time, so samples are unambiguous; CoCoA's
 *   weak estimator exists for the opposite case (CON retransmissions whose
 *   ACK could answer either copy) and is not needed here.
 * - Window, in packets: slow start from an initial window of 10 (RFC 6928, =
 *   MAX_PAYLOADS of RFC 9177), +1 per delivered packet; left when the RTT of a
 *   round rises by more than max(4 ms, minRTT/8) (HyStart++, RFC 9406 §4.2,
 *   so a clean path is filled without first overflowing its queue) or on the
 *   first loss; then congestion avoidance, +1/cwnd per delivered packet; one
 *   multiplicative decrease (x 1/2) per loss episode (RFC 5681 §3, RFC 9002 §7.3.2).
 * - Loss detection from later arrivals (RFC 9002 §6.1): a packet is lost
 *   when 3 packets sent after it have arrived, or 9/8 RTT (at least the
 *   timer granularity) after a later one arrived: recovery in about one RTT.
 * - Probe timeout (RFC 9002 §6.2): srtt + max(4 rttvar, granularity), doubled
 *   on each consecutive expiry up to maxRtoMs (exponential back-off, RFC 8085
 *   §3.1.3); an expiry sends the two oldest packets again as probes; three in
 *   a row with nothing delivered collapse the window.
 * - Before the first RTT sample no more than the initial window is in flight
 *   (RFC 8085 §3.1.3), and the first probe waits initialRtoMs (RFC 7252's
 *   ACK_TIMEOUT, 2 s). Not the Q-Block2 probe's RTT: with many devices
 *   starting at once the first flight queues behind the others' for far
 *   longer than the probe took, and timeouts from it were spurious
 *   (bench/sim.ts, 50 devices: goodput 0.92 -> 0.43, devices failing).
 * - Pacing (RFC 9002 §7.7): srtt / (1.25 cwnd) between packets.
 */
import type { Runtime } from '../core/runtime.js';
import { resolveCongestion, type CongestionOptions, type ResolvedCongestion } from './congestion-options.js';
import { HyStart } from './hystart.js';

export type { CongestionOptions } from './congestion-options.js';

interface Flight {
  readonly sentAt: number;
  readonly order: number;
  readonly retransmitted: boolean;
}

/** RFC 9002 §6.1.2 kTimeThreshold. */
const TIME_THRESHOLD = 9 / 8;
/** RFC 9002 §7.7: pace at 1.25 x cwnd per RTT so that pacing never limits the window. */
const PACING_GAIN = 1.25;
/** RFC 9002 §6.2.4: packets sent again when the probe timer expires. */
const PROBES = 2;
/** RFC 9002 §7.6: consecutive probe timeouts that mean persistent congestion. */
const PERSISTENT_PTOS = 3;
/** Deadlines are computed as sentAt + delay; compare with slack for floating-point rounding. */
const EPSILON = 1e-6;

/** Window, RTT estimate and in-flight packets of one path. */
export class CongestionController {
  private readonly o: ResolvedCongestion;
  private cwnd: number;
  private ssthresh = Infinity;
  private srttMs: number | undefined;
  private rttvarMs = 0;
  private latestRttMs = 0;
  private minRttMs = Infinity;
  private readonly flight = new Map<number, Flight>();
  private nextOrder = 0;
  private largestDeliveredOrder = -1;
  private recoveryStartOrder = -1;
  private ptoCount = 0;
  private lastDeliveryAt: number;
  private lastCut: number | undefined;
  private readonly hystart = new HyStart();
  /** Counters for tests and benchmarks. */
  readonly stats = { delivered: 0, lost: 0, losses: 0, timeouts: 0, rttSamples: 0, slowStartExits: 0 };

  constructor(
    private readonly runtime: Pick<Runtime, 'now'>,
    options: CongestionOptions = {},
  ) {
    this.o = resolveCongestion(options);
    this.cwnd = this.o.initialWindow;
    this.lastDeliveryAt = runtime.now();
  }

  /** Congestion window in packets. */
  get window(): number {
    return Math.floor(this.cwnd);
  }

  /** True while the window still doubles every RTT. */
  get inSlowStart(): boolean {
    return this.cwnd < this.ssthresh;
  }

  /** Packets sent and neither delivered nor declared lost. */
  get inFlight(): number {
    return this.flight.size;
  }

  /** Smoothed RTT, undefined before the first sample. */
  get srtt(): number | undefined {
    return this.srttMs;
  }

  /** Smallest RTT seen, undefined before the first sample. */
  get minRtt(): number | undefined {
    return this.minRttMs === Infinity ? undefined : this.minRttMs;
  }

  /** Whether `id` is in flight. */
  isInFlight(id: number): boolean {
    return this.flight.has(id);
  }

  /** Packets that may be sent now (RFC 8085 §3.1.3: at most the initial window before an RTT sample). */
  allowance(): number {
    const limit = this.srttMs === undefined ? Math.min(this.cwnd, this.o.initialWindow) : this.cwnd;
    return Math.max(0, Math.floor(limit) - this.flight.size);
  }

  /** Milliseconds between packets when pacing; 0 before an RTT sample (the initial window goes at once). */
  pacingIntervalMs(): number {
    return this.srttMs === undefined ? 0 : this.srttMs / (this.cwnd * PACING_GAIN);
  }

  /** Current probe timeout with back-off applied. */
  probeTimeoutMs(): number {
    const base = this.srttMs === undefined ? this.o.initialRtoMs : Math.max(this.o.minRtoMs, this.srttMs + Math.max(4 * this.rttvarMs, this.o.granularityMs));
    return Math.min(this.o.maxRtoMs, base * 2 ** this.ptoCount);
  }

  /** Record that packet `id` was sent now (again, when `retransmission`). */
  onSent(id: number, retransmission = false): void {
    this.flight.delete(id);
    this.flight.set(id, { sentAt: this.runtime.now(), order: this.nextOrder++, retransmitted: retransmission });
  }

  /** Forget packet `id` without a verdict (the transfer no longer needs it). */
  forget(id: number): void {
    this.flight.delete(id);
  }

  /** Packet `id` arrived. False when it was not in flight (a duplicate, or late after being declared lost). */
  onDelivered(id: number): boolean {
    const f = this.flight.get(id);
    if (f === undefined) return false;
    this.flight.delete(id);
    const now = this.runtime.now();
    // RFC 6298 §3 (Karn): a packet sent twice gives no RTT sample.
    if (!f.retransmitted) {
      this.rttSample(now - f.sentAt);
      // RFC 9406 §4.2 (hystart.ts): a round whose RTT rose ends slow start.
      if (this.inSlowStart && this.hystart.onSample(now - f.sentAt, f.order, this.nextOrder - 1)) {
        this.ssthresh = this.cwnd;
        this.stats.slowStartExits++;
      }
    }
    if (f.order > this.largestDeliveredOrder) this.largestDeliveredOrder = f.order;
    this.onAcked(1, f.order > this.recoveryStartOrder);
    return true;
  }

  /**
   * `n` packets were delivered, for a sender that counts deliveries without
   * tracking packets (a server learning of them from the next request).
   */
  onAcked(n: number, grow = true): void {
    this.stats.delivered += n;
    this.ptoCount = 0;
    this.lastDeliveryAt = this.runtime.now();
    if (!grow) return; // RFC 9002 §7.3.2: no growth for packets sent before recovery began
    const queued = this.srttMs === undefined || this.minRttMs === Infinity ? 0 : this.srttMs - this.minRttMs;
    const over = queued > this.o.targetDelayMs;
    if (over && this.cwnd < this.ssthresh) this.ssthresh = this.cwnd; // the queue is building: slow start is over
    for (let i = 0; i < n; i++) {
      if (this.cwnd < this.ssthresh) this.cwnd += 1;
      else this.cwnd += over ? -1 / this.cwnd : 1 / this.cwnd;
    }
    this.cwnd = Math.min(this.o.maxWindow, Math.max(this.o.minWindow, this.cwnd));
  }

  /** Feed one RTT measurement (RFC 6298 §2.2, §2.3). */
  rttSample(ms: number): void {
    if (!(ms >= 0)) return;
    this.stats.rttSamples++;
    this.latestRttMs = ms;
    if (ms < this.minRttMs) this.minRttMs = ms;
    if (this.srttMs === undefined) {
      this.srttMs = ms;
      this.rttvarMs = ms / 2;
    } else {
      this.rttvarMs = 0.75 * this.rttvarMs + 0.25 * Math.abs(this.srttMs - ms);
      this.srttMs = 0.875 * this.srttMs + 0.125 * ms;
    }
  }

  /**
   * Packets lost by the packet or time threshold, removed from flight (the
   * caller sends them again). A loss among packets sent after the current
   * recovery began halves the window once.
   */
  detectLost(): number[] {
    if (this.largestDeliveredOrder < 0) return [];
    const now = this.runtime.now();
    const delay = this.lossDelay();
    const lost: number[] = [];
    let newestLostOrder = -1;
    for (const [id, f] of this.flight) {
      if (f.order >= this.largestDeliveredOrder) break; // insertion order is send order
      if (this.largestDeliveredOrder - f.order >= this.o.reorderPackets || now - f.sentAt >= delay - EPSILON) {
        lost.push(id);
        newestLostOrder = f.order;
      }
    }
    for (const id of lost) this.flight.delete(id);
    if (lost.length > 0) this.onLoss(lost.length, newestLostOrder);
    return lost;
  }

  /** When {@link detectLost} or {@link onProbeTimeout} next has something to do; undefined when nothing is in flight. */
  nextTimerAt(): number | undefined {
    for (const f of this.flight.values()) {
      // The oldest packet has the earliest deadline of both kinds.
      const pto = f.sentAt + this.probeTimeoutMs();
      return f.order < this.largestDeliveredOrder ? Math.min(pto, f.sentAt + this.lossDelay()) : pto;
    }
    return undefined;
  }

  /**
   * The probe timer expired (RFC 9002 §6.2): the oldest packets in flight
   * for longer than the probe timeout (at most {@link PROBES}) are returned
   * to be sent again as probes; the others stay in flight, since a late
   * RTT (a stalled peer, a busy event loop) is no loss, and once a probe
   * arrives the loss detection of later arrivals settles them. The timeout
   * doubles (RFC 8085 §3.1.3 exponential back-off). Persistent congestion
   * (three timeouts in a row, RFC 9002 §7.6) collapses the window and gives
   * up every expired packet.
   */
  onProbeTimeout(): number[] {
    const now = this.runtime.now();
    const pto = this.probeTimeoutMs();
    const expired: number[] = [];
    for (const [id, f] of this.flight) if (now - f.sentAt >= pto - EPSILON) expired.push(id);
    if (expired.length === 0) return this.detectLost();
    this.stats.timeouts++;
    this.ptoCount = Math.min(this.ptoCount + 1, 30);
    const persistent = this.ptoCount >= PERSISTENT_PTOS;
    if (persistent) {
      this.ssthresh = Math.max(this.o.minWindow, this.cwnd / 2);
      this.cwnd = this.o.minWindow;
    }
    const lost = persistent ? expired : expired.slice(0, PROBES);
    for (const id of lost) this.flight.delete(id);
    this.stats.lost += lost.length;
    this.recoveryStartOrder = this.nextOrder - 1;
    return lost;
  }

  /**
   * A loss signal without packet tracking (a server that sees a block asked
   * for again): halves the window at most once per RTT.
   */
  onCongestionSignal(): void {
    const now = this.runtime.now();
    if (this.lastCut !== undefined && now - this.lastCut < (this.srttMs ?? this.o.initialRtoMs)) return;
    this.lastCut = now;
    this.reduce();
  }

  /** Milliseconds since the last delivery (or since creation). */
  idleMs(): number {
    return this.runtime.now() - this.lastDeliveryAt;
  }

  /** Consecutive probe timeouts without a delivery. */
  get backoffs(): number {
    return this.ptoCount;
  }

  /** RFC 9002 §6.1.2: 9/8 of the larger of SRTT and the latest RTT, at least the granularity. */
  private lossDelay(): number {
    return Math.max(this.o.granularityMs, TIME_THRESHOLD * Math.max(this.srttMs ?? 0, this.latestRttMs));
  }

  private onLoss(count: number, newestLostOrder: number): void {
    this.stats.lost += count;
    if (newestLostOrder <= this.recoveryStartOrder) return; // same loss episode: one reduction
    this.stats.losses++;
    this.recoveryStartOrder = this.nextOrder - 1;
    this.reduce();
  }

  private reduce(): void {
    this.ssthresh = Math.max(this.o.minWindow, this.cwnd / 2);
    this.cwnd = this.ssthresh;
  }
}

