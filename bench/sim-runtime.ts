/**
 * A virtual clock for simulations: a Runtime whose timers live in a binary
 * heap and run in time order when {@link SimRuntime.run} is called, with a
 * seeded generator. Unlike the test FakeRuntime (a scan per event), it
 * stays fast with hundreds of thousands of events.
 */
import type { Runtime, TimerHandle } from '../src/core/runtime.js';
import { mulberry32 } from '../src/core/prng.js';

interface Event {
  at: number;
  seq: number;
  fn: (() => void) | undefined;
}

/** Runtime on a virtual clock. */
export class SimRuntime implements Runtime {
  private t = 0;
  private seq = 0;
  private heap: Event[] = [];
  private readonly rnd: () => number;

  constructor(seed = 1) {
    this.rnd = mulberry32(seed);
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const e: Event = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.push(e);
    return e;
  }

  clearTimer(handle: TimerHandle): void {
    (handle as Event).fn = undefined;
  }

  random(): number {
    return this.rnd();
  }

  randomBytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.rnd() * 256);
    return b;
  }

  /** Run events in time order until none is left before `until`, or `stop()` says so. Returns the events run. */
  run(until: number, stop: () => boolean = () => false): number {
    let n = 0;
    while (this.heap.length > 0 && !stop()) {
      const e = this.pop();
      if (e.at > until) {
        this.push(e);
        this.t = until;
        break;
      }
      this.t = e.at;
      const fn = e.fn;
      if (fn === undefined) continue;
      e.fn = undefined;
      fn();
      n++;
    }
    // Nothing left before `until`: the clock still reaches it.
    if (this.heap.length === 0 && !stop()) this.t = Math.max(this.t, until);
    return n;
  }

  private push(e: Event): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, e)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  private pop(): Event {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= h.length) break;
        const r = l + 1;
        const c = r < h.length && less(h[r]!, h[l]!) ? r : l;
        if (less(last, h[c]!)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

function less(a: Event, b: Event): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
