/**
 * The real {@link Runtime}: performance.now(), unref'd timers, crypto randomness.
 */
import { randomFillSync } from 'node:crypto';
import type { Runtime, TimerHandle } from '../core/runtime.js';

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
  randomBytes: (n: number) => takeRandom(n),
};

// A token per request made one getrandom() call per request; draw them from a pool instead.
const POOL = new Uint8Array(4096);
let poolOffset = POOL.length;

function takeRandom(n: number): Uint8Array {
  if (n > POOL.length) return randomFillSync(new Uint8Array(n));
  if (poolOffset + n > POOL.length) {
    randomFillSync(POOL);
    poolOffset = 0;
  }
  const out = POOL.slice(poolOffset, poolOffset + n);
  // Never hand out the same bytes twice.
  POOL.fill(0, poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}
