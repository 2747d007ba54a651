/**
 * The real {@link Runtime}: performance.now(), unref'd timers, crypto randomness.
 */
import { randomBytes } from 'node:crypto';
import type { Runtime, TimerHandle } from '../messaging/runtime.js';

/** Runtime backed by the process clock, timers and CSPRNG. */
export const systemRuntime: Runtime = {
  now: () => performance.now(),
  setTimer(ms: number, fn: () => void): TimerHandle {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimer(handle: TimerHandle): void {
    clearTimeout(handle as NodeJS.Timeout);
  },
  random: () => Math.random(),
  randomBytes: (n: number) => new Uint8Array(randomBytes(n)),
};
