/**
 * A bound on distinct disk reads in flight. Requests waiting on the same
 * chunk share one read (files.ts), so this counts real work, not waiting
 * devices; reads beyond the bound wait their turn in a bounded FIFO, and
 * only beyond that queue is a read refused (5.03 with Max-Age 1).
 */
import { CoapfwError } from '../errors.js';

/** Runs async reads at most `maxConcurrent` at a time, queuing up to `maxQueued` more. */
export class ReadLimiter {
  private active = 0;
  private readonly queue: Array<() => void> = [];
  /** The most reads ever in flight at once (for tests and metrics). */
  maxSeen = 0;

  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueued: number,
  ) {
    for (const [name, v] of [['maxConcurrentReads', maxConcurrent], ['maxQueuedReads', maxQueued]] as const) {
      if (!Number.isInteger(v) || v < (name === 'maxQueuedReads' ? 0 : 1)) throw new CoapfwError('INVALID_ARGUMENT', `serve: ${name} must be an integer >= ${name === 'maxQueuedReads' ? 0 : 1}, got ${v}`);
    }
  }

  /** Reads in flight. */
  get inFlight(): number {
    return this.active;
  }

  /** Run `read` when a slot is free; LIMIT_EXCEEDED (maxAge 1) at once when the queue is full. */
  async run<T>(read: () => Promise<T>): Promise<T> {
    if (this.active >= this.maxConcurrent) {
      if (this.queue.length >= this.maxQueued) {
        throw new CoapfwError('LIMIT_EXCEEDED', `serve: ${this.maxConcurrent} reads in flight and ${this.maxQueued} queued; try again`, { maxAge: 1 });
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    } else {
      this.active++;
    }
    this.maxSeen = Math.max(this.maxSeen, this.active);
    try {
      return await read();
    } finally {
      // Hand the slot straight to the next queued read (active stays the same), or free it.
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }
}
