/**
 * The Q-Block2 client's one timer: re-armed on nearly every payload, it is
 * not cleared and set again each time the deadline moves later (a timer per
 * datagram was a tenth of the client's CPU), and it still fires on time when
 * the deadline moves either way.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../src/core/prng.js';
import { bytes, Wire } from './qblock2-harness.js';

function counted(w: Wire): { clears: () => number } {
  let clears = 0;
  const clear = w.rt.clearTimer.bind(w.rt);
  w.rt.clearTimer = (h) => (clears++, clear(h));
  return { clears: () => clears };
}

describe('Q-Block2 client timer', () => {
  it('a clean 256-block transfer clears its timer far fewer times than it receives blocks', async () => {
    const body = bytes(256 * 1024, 5);
    const w = new Wire(body, () => false, { client: { mode: 'paced' }, latencyMs: 10 });
    const c = counted(w);
    void w.client.start();
    w.rt.advance(60_000);
    expect((await w.client.done).kind).toBe('complete');
    expect(w.received).toEqual(body);
    // One clear per payload before; now only when a deadline moves earlier (and the final one).
    expect(c.clears()).toBeLessThan(64);
  });

  it('still recovers losses in about an RTT (the timer fires when due, not when first armed)', async () => {
    const body = bytes(64 * 1024, 6);
    const rnd = mulberry32(77);
    const w = new Wire(body, (dir, n) => (n !== 0 || dir === 'req' ? rnd() < 0.1 : false), { client: { mode: 'paced' }, latencyMs: 10 });
    void w.client.start();
    w.rt.advance(60_000);
    expect((await w.client.done).kind).toBe('complete');
    expect(w.received).toEqual(body);
    expect(w.log[w.log.length - 1]!.at).toBeLessThan(3000);
  });
});
