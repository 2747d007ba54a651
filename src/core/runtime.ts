/**
 * What the pure layers need from the outside world: a monotonic clock,
 * timers and randomness. Tests pass a fake one; {@link systemRuntime} in
 * transport/ is the real one.
 */

/** Opaque handle of a timer set through a {@link Runtime}. */
export type TimerHandle = unknown;

/** Clock, timers and randomness, injected into every pure component. */
export interface Runtime {
  /** Monotonic milliseconds. Never the wall clock: devices have none they can trust. */
  now(): number;
  /** Call `fn` once after `ms` milliseconds. Timers must not keep a process alive. */
  setTimer(ms: number, fn: () => void): TimerHandle;
  clearTimer(handle: TimerHandle): void;
  /** Uniform float in [0, 1), for back-off jitter. */
  random(): number;
  /** Unpredictable bytes, for tokens (RFC 7252 §5.3.1) and Echo values. */
  randomBytes(n: number): Uint8Array;
}
