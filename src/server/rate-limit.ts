/**
 * Token buckets keyed by peer address, in a bounded table: each key may
 * spend `burst` tokens at once and earns `ratePerSecond` back. The least
 * recently seen key is forgotten beyond `maxKeys` (it starts again with a
 * full bucket), so a flood of source addresses cannot grow memory.
 */
import { CoapfwError } from '../errors.js';

/** One limit: sustained rate and burst. */
export interface RateLimit {
  /** Tokens earned per second. */
  readonly ratePerSecond: number;
  /** Bucket size: how many may be spent at once. */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** A bounded table of token buckets on a caller-supplied monotonic clock (ms). */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly maxKeys: number,
  ) {
    if (!(limit.ratePerSecond > 0) || !(limit.burst >= 1)) {
      throw new CoapfwError('INVALID_ARGUMENT', `rate limit: ratePerSecond must be > 0 and burst >= 1, got ${limit.ratePerSecond} and ${limit.burst}`);
    }
    if (!Number.isInteger(maxKeys) || maxKeys < 1) throw new CoapfwError('INVALID_ARGUMENT', `rate limit: maxKeys must be an integer >= 1, got ${maxKeys}`);
  }

  /** Keys tracked (at most `maxKeys`). */
  get size(): number {
    return this.buckets.size;
  }

  /** Spend one token of `key` at time `now`: 0 when granted, else the ms until one is earned. */
  take(key: string, now: number): number {
    let b = this.buckets.get(key);
    if (b === undefined) {
      while (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.limit.burst, at: now };
    } else {
      this.buckets.delete(key); // re-inserted below: the table stays in least-recently-seen order
      b.tokens = Math.min(this.limit.burst, b.tokens + ((now - b.at) / 1000) * this.limit.ratePerSecond);
      b.at = now;
    }
    this.buckets.set(key, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return ((1 - b.tokens) / this.limit.ratePerSecond) * 1000;
  }

  /**
   * Spend `tokens` more of `key` for work found costlier once done; the
   * bucket may go below zero, and the key then waits longer for its next one.
   */
  charge(key: string, tokens: number): void {
    const b = this.buckets.get(key);
    if (b !== undefined) b.tokens -= tokens;
  }
}
