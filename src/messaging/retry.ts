/**
 * Retry with exponential back-off and full jitter, on injected timers only
 * (never the wall clock). A small wrapper, so the fetcher and the device
 * client share one policy instead of threading flags through their code.
 */
import { CoapfwError } from '../errors.js';
import type { Runtime } from '../core/runtime.js';

/** Back-off policy. */
export interface RetryPolicy {
  /** Attempts in all, including the first. Default 5. */
  readonly attempts?: number;
  /** First back-off ceiling in ms. Default 1000. */
  readonly baseMs?: number;
  /** Largest back-off ceiling in ms. Default 60000. */
  readonly maxMs?: number;
  /**
   * Longest wait a server's "try again in N seconds" (Max-Age on a 5.03 or
   * 4.29) may impose before the next attempt, in ms. Default 30000.
   */
  readonly maxRetryAfterMs?: number;
}

/** Delay before retry `n` (1-based): uniform in [0, min(maxMs, baseMs * 2^(n-1))] ("full jitter"). */
export function backoffDelay(n: number, policy: RetryPolicy, random: () => number): number {
  const ceiling = Math.min(policy.maxMs ?? 60_000, (policy.baseMs ?? 1000) * 2 ** (n - 1));
  return random() * ceiling;
}

/** Resolve after `ms` on the runtime's timers; rejects with ABORTED if `signal` aborts. */
export function sleep(runtime: Runtime, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new CoapfwError('ABORTED', 'aborted', { cause: signal.reason }));
      return;
    }
    const onAbort = (): void => {
      runtime.clearTimer(t);
      reject(new CoapfwError('ABORTED', 'aborted', { cause: signal?.reason }));
    };
    const t = runtime.setTimer(ms, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Delay before retrying a request the server asked to repeat after `maxAgeS`
 * seconds (RFC 7252 §5.9.3.4): never sooner, capped by `maxRetryAfterMs`, and
 * spread over another half of it (at least 1 s) so that clients refused at
 * once do not all come back in the same instant.
 */
export function retryAfterDelay(maxAgeS: number, policy: RetryPolicy, random: () => number): number {
  const base = Math.min(maxAgeS * 1000, policy.maxRetryAfterMs ?? 30_000);
  return base + random() * Math.max(base / 2, 1000);
}

/**
 * Run `fn` until it succeeds, `isRetryable` says no, or the attempts run out
 * (then the last error is thrown). `onRetry` sees each failure before the wait.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryPolicy & {
    readonly runtime: Runtime;
    readonly signal?: AbortSignal;
    readonly isRetryable?: (e: unknown) => boolean;
    /** The wait a failure itself asks for (a server's Max-Age), instead of the back-off; undefined: back off. */
    readonly retryAfterMs?: (e: unknown) => number | undefined;
    readonly onRetry?: (e: unknown, attempt: number, delayMs: number) => void;
  },
): Promise<T> {
  const attempts = options.attempts ?? 5;
  if (!Number.isInteger(attempts) || attempts < 1) throw new CoapfwError('INVALID_ARGUMENT', `retry: attempts must be >= 1, got ${attempts}`);
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (attempt >= attempts || !(options.isRetryable?.(e) ?? true) || options.signal?.aborted) throw e;
      const delay = options.retryAfterMs?.(e) ?? backoffDelay(attempt, options, () => options.runtime.random());
      options.onRetry?.(e, attempt, delay);
      await sleep(options.runtime, delay, options.signal);
    }
  }
}
