/**
 * How long the Q-Block2 client keeps a partial body (RFC 9177 §4.4): for
 * NON_PARTIAL_TIMEOUT or the body's Max-Age (60 s when absent), whichever is
 * less, counted from the last payload that arrived.
 */
import type { CoapMessage } from '../codec/message.js';
import { OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption } from '../codec/options.js';
import { nonPartialTimeout, type QBlockParams } from './qblock2-params.js';

/** RFC 7252 §5.10.5: Max-Age when a response carries none. */
const DEFAULT_MAX_AGE_MS = 60_000;

/** The lifetime of one partial body. */
export class PartialLifetime {
  private lastArrival: number;
  private limit: number;

  constructor(
    private readonly params: QBlockParams,
    now: number,
  ) {
    this.lastArrival = now;
    this.limit = Math.min(nonPartialTimeout(params), DEFAULT_MAX_AGE_MS);
  }

  /** How long the body is kept after its last payload, in ms. */
  get limitMs(): number {
    return this.limit;
  }

  /** Milliseconds since the last payload (or since the start). */
  idleMs(now: number): number {
    return now - this.lastArrival;
  }

  /** Milliseconds left before the body is given up (0 or less: due). */
  leftMs(now: number): number {
    return this.lastArrival + this.limit - now;
  }

  /** §4.4: a response arrived at `now`; the body is kept for NON_PARTIAL_TIMEOUT or its Max-Age, whichever is less. */
  note(msg: CoapMessage, now: number): void {
    this.lastArrival = now;
    const raw = getOption(msg, OptionNumber.MAX_AGE);
    let maxAgeMs = DEFAULT_MAX_AGE_MS;
    if (raw !== undefined) {
      try {
        maxAgeMs = decodeUint(raw) * 1000;
      } catch {
        // A malformed Max-Age counts as absent.
      }
    }
    // Never below the time a lost block takes to be noticed and asked for again.
    this.limit = Math.max(this.params.nonReceiveTimeoutMs * 2, Math.min(nonPartialTimeout(this.params), maxAgeMs));
  }
}
