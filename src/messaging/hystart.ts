/**
 * HyStart++ slow-start exit (RFC 9406 §4.2) for the congestion controller
 * (congestion.ts): leave slow start when the RTT of a round rises, so a
 * clean path is filled without first overflowing its queue.
 */

/** RFC 9406 §4.3: N_RTT_SAMPLE, and the clamp of the RTT increase that ends slow start. */
const HYSTART_SAMPLES = 8;
const HYSTART_MIN_ETA = 4;
const HYSTART_MAX_ETA = 16;

/** The rounds and their smallest RTTs of one path in slow start. */
export class HyStart {
  /** HyStart++ round: ends when a packet sent after `roundEnd` is delivered. */
  private roundEnd = -1;
  private roundMin = Infinity;
  private lastRoundMin = Infinity;
  private roundSamples = 0;

  /**
   * RFC 9406 §4.2: per round, the smallest RTT of its first samples; slow
   * start ends when it exceeds the last round's by clamp(minRTT/8, 4, 16) ms.
   * `rtt` was measured on the packet sent `order`-th; `newestSent` is the
   * order of the newest packet sent. True when slow start should end.
   */
  onSample(rtt: number, order: number, newestSent: number): boolean {
    if (order > this.roundEnd) {
      this.lastRoundMin = this.roundMin;
      this.roundMin = Infinity;
      this.roundSamples = 0;
      this.roundEnd = newestSent;
    }
    this.roundSamples++;
    if (rtt < this.roundMin) this.roundMin = rtt;
    if (this.roundSamples < HYSTART_SAMPLES || this.lastRoundMin === Infinity) return false;
    const eta = Math.min(HYSTART_MAX_ETA, Math.max(HYSTART_MIN_ETA, this.lastRoundMin / 8));
    return this.roundMin >= this.lastRoundMin + eta;
  }
}
