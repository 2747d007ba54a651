import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SinkChain } from '../../src/blockwise/qblock2-sink.js';

describe('SinkChain', () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown): void => void unhandled.push(e);
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', onUnhandled);
  });
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled);
  });

  it('counts unsunk writes and settles after all of them', async () => {
    const chain = new SinkChain();
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const sunk: number[] = [];
    chain.track(slow, () => sunk.push(1), () => undefined);
    chain.track(Promise.resolve(), () => sunk.push(2), () => undefined);
    await Promise.resolve();
    expect(chain.unsunk).toBe(1);
    release();
    await chain.settled;
    expect(chain.unsunk).toBe(0);
    expect(sunk.sort()).toEqual([1, 2]);
  });

  it('rejects with the first failure, tells every failure, and leaves no rejection unhandled', async () => {
    const chain = new SinkChain();
    const failed: string[] = [];
    chain.track(Promise.reject(new Error('first')), () => undefined, (e) => failed.push(e.message));
    await expect(chain.settled).rejects.toThrow('first');
    // Writes tracked after the chain failed, failing too.
    chain.track(Promise.reject(new Error('second')), () => undefined, (e) => failed.push(e.message));
    chain.track(Promise.reject(new Error('third')), () => undefined, (e) => failed.push(e.message));
    await expect(chain.settled).rejects.toThrow('first');
    await new Promise((r) => setTimeout(r, 20));
    expect(failed).toEqual(['first', 'second', 'third']);
    expect(unhandled).toEqual([]);
  });
});
