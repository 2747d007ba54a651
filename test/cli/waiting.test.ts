/**
 * watchRequests (src/cli/waiting.ts) on vitest's fake timers: the note comes
 * after `afterMs` without an answer and then every `everyMs`, an answer
 * resets the wait, and however many requests are in flight one timer
 * watches them all (a timer per request was a measurable part of the
 * client's CPU per block).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CoapMessage } from '../../src/codec/message.js';
import type { Requester } from '../../src/core/request.js';
import { watchRequests } from '../../src/cli/waiting.js';

/** A requester whose requests stay pending until `answer()` resolves the oldest. */
function held() {
  const pending: Array<(m: CoapMessage) => void> = [];
  const request: Requester = () => new Promise<CoapMessage>((resolve) => pending.push(resolve));
  return { request, answer: () => pending.shift()!({} as CoapMessage), count: () => pending.length };
}

beforeEach(() => void vi.useFakeTimers());
afterEach(() => void vi.useRealTimers());

describe('watchRequests', () => {
  it('notes after afterMs without an answer, then every everyMs; an answer stops it', async () => {
    const h = held();
    const notes: string[] = [];
    const watched = watchRequests(h.request, '127.0.0.1:5683', (t) => void notes.push(t), { afterMs: 2000, everyMs: 1000, now: () => Date.now() });
    const p = watched({ code: 1 }, {});
    await vi.advanceTimersByTimeAsync(1999);
    expect(notes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(notes).toEqual(['waiting for 127.0.0.1:5683 … 2 s without an answer']);
    await vi.advanceTimersByTimeAsync(2000);
    expect(notes).toHaveLength(3);
    h.answer();
    await p;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(notes).toHaveLength(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('one timer for many requests in flight; an answer restarts the wait for the others', async () => {
    const h = held();
    const notes: string[] = [];
    const watched = watchRequests(h.request, 'p', (t) => void notes.push(t), { afterMs: 2000, everyMs: 1000, now: () => Date.now() });
    const ps = [0, 1, 2, 3].map(() => watched({ code: 1 }, {}));
    expect(h.count()).toBe(4);
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1500);
    h.answer(); // the others now wait from here: no note at 2 s
    await ps[0];
    await vi.advanceTimersByTimeAsync(1000);
    expect(notes).toEqual([]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(notes).toEqual(['waiting for p … 2 s without an answer']);
    expect(vi.getTimerCount()).toBe(1);
    for (let i = 1; i < 4; i++) h.answer();
    await Promise.all(ps);
  });
});
