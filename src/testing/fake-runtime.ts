import type { Runtime, TimerHandle } from '../core/runtime.js';

/**
 * A {@link Runtime} whose clock only moves when the test says so: timers fire
 * in order inside {@link FakeRuntime.advance}, randomness is a seeded LCG
 * (or a fixed value), so retransmission and back-off run the same every time.
 */
export class FakeRuntime implements Runtime {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private rnd: number;

  /** `seed` starts the generator; `fixedRandom`, when given, is what every `random()` returns. */
  constructor(seed = 42, private readonly fixedRandom?: number) {
    this.rnd = seed;
  }

  now(): number {
    return this.t;
  }
  setTimer(ms: number, fn: () => void): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle as number);
  }
  random(): number {
    if (this.fixedRandom !== undefined) return this.fixedRandom;
    this.rnd = (this.rnd * 1103515245 + 12345) % 2147483648;
    return this.rnd / 2147483648;
  }
  randomBytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.random() * 256);
    return b;
  }
  /** Timers set and not yet fired or cleared. */
  get pendingTimers(): number {
    return this.timers.size;
  }
  /** Advance the clock, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}
