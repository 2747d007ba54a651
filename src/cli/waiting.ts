/**
 * Saying what a transfer waits for. A CON request to a silent server is
 * retransmitted for up to 93 s (RFC 7252 §4.8.2 MAX_TRANSMIT_WAIT) before the
 * retry policy even sees a timeout; without a word the user cannot tell a slow
 * link from no server. This wraps the requester: once a request has gone
 * unanswered for a moment, `note` is called every second with how long we
 * have been waiting, and again when an attempt times out and is retried.
 */
import type { Requester } from '../core/request.js';
import { isCoapfwError } from '../errors.js';

/** When to start talking, and how often to update (ms). */
export interface WaitingOptions {
  readonly afterMs?: number;
  readonly everyMs?: number;
  readonly now?: () => number;
}

/**
 * `request`, calling `note(text, retry)` while it waits for `peer` (text like
 * "waiting for 127.0.0.1:5683 … 12 s without an answer"); `retry` is true for
 * the one call when an attempt timed out.
 */
export function watchRequests(request: Requester, peer: string, note: (text: string, retry: boolean) => void, options: WaitingOptions = {}): Requester {
  const afterMs = options.afterMs ?? 2000;
  const everyMs = options.everyMs ?? 1000;
  const now = options.now ?? (() => performance.now());
  // Since when nothing has come back: one answer resets it, so a slow but
  // working link never shows the note, and a dead one counts across attempts.
  let since: number | undefined;
  let retrying = false;
  let pending = 0;
  // One timer for all requests, not one per request (a timer set and cleared
  // per block was a tenth of the client's CPU on a fast link). Unref'd: it
  // only watches; the requests themselves keep the process alive.
  let timer: NodeJS.Timeout | undefined;
  const text = (): string => `waiting for ${peer} … ${Math.round((now() - (since ?? now())) / 1000)} s without an answer${retrying ? ', retrying' : ''}`;
  const arm = (ms: number): void => {
    timer = setTimeout(tick, ms);
    timer.unref();
  };
  const tick = (): void => {
    timer = undefined;
    if (pending === 0 || since === undefined) return; // idle: the next request arms it again
    const waited = now() - since;
    if (waited < afterMs) return arm(afterMs - waited);
    note(text(), false);
    arm(everyMs);
  };
  return async (spec, opts) => {
    since ??= now();
    pending++;
    if (timer === undefined) arm(Math.max(0, afterMs - (now() - since)));
    try {
      const res = await request(spec, opts);
      // Requests still out (a pipeline) wait from this answer on.
      since = pending > 1 ? now() : undefined;
      retrying = false;
      return res;
    } catch (e) {
      if (isCoapfwError(e, 'TIMEOUT')) {
        retrying = true;
        note(text(), true);
      }
      throw e;
    } finally {
      pending--;
    }
  };
}
