/**
 * The Q-Block2 client feeding a bounded consumer (a stream through the
 * reorder buffer): how far ahead it asks, back-pressure from a slow sink,
 * blocks a server sends past the bound, a hole that never fills, and a
 * resume whose block record ends at a block it holds.
 */
import { describe, expect, it } from 'vitest';
import { BlockBitmap } from '../../src/blockwise/bitmap.js';
import type { QBlock2Outcome } from '../../src/blockwise/qblock2-client.js';
import { ReorderBuffer } from '../../src/blockwise/reorder.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { bytes, Wire } from './qblock2-harness.js';

const received = (w: Wire): number[] => [...new Set(w.responses().filter((r) => !r.dropped).map((r) => Number(r.qb2[0]!.split('/')[0])))];

/** The outcome once settled, or undefined while the client still waits (a hang shows as undefined, not as a stuck test). */
async function settledAfter(w: Wire, ms: number): Promise<{ ok?: QBlock2Outcome; error?: unknown } | undefined> {
  let out: { ok?: QBlock2Outcome; error?: unknown } | undefined;
  w.client.done.then(
    (ok) => void (out = { ok }),
    (error: unknown) => void (out = { error }),
  );
  for (let t = 0; t < ms && out === undefined; t += 100) {
    w.rt.advance(100);
    for (let i = 0; i < 5; i++) await Promise.resolve();
  }
  return out;
}

describe('Q-Block2 into a bounded consumer', () => {
  it('a slow sink stops new requests at maxAhead pending writes; releasing it completes the body', async () => {
    const body = bytes(64 * 1024, 3);
    const out = new Uint8Array(body.length);
    const pending: (() => void)[] = [];
    const w = new Wire(body, () => false, {
      client: {
        mode: 'paced',
        maxAhead: 8,
        onBlock: (b) => {
          out.set(b.data, b.offset);
          return new Promise<void>((r) => pending.push(r));
        },
      },
    });
    void w.client.start();
    w.rt.advance(3000);
    // Gate shut at 8 unwritten blocks, plus what was in flight then (itself within 8 past the lowest missing).
    expect(received(w).length).toBeGreaterThanOrEqual(8);
    expect(received(w).length).toBeLessThanOrEqual(16);
    let result: QBlock2Outcome | undefined;
    void w.client.done.then((o) => (result = o));
    for (let i = 0; i < 500 && result === undefined; i++) {
      pending.splice(0).forEach((r) => r());
      for (let k = 0; k < 5; k++) await Promise.resolve();
      w.rt.advance(50);
      for (let k = 0; k < 5; k++) await Promise.resolve();
    }
    expect(result?.kind).toBe('complete');
    expect(out).toEqual(body);
  });

  it('blocks a server sends past maxAhead are dropped unrecorded and fetched in their turn', async () => {
    const body = bytes(32 * 1024, 4);
    // 'rfc' mode: the body request draws a whole MAX_PAYLOADS_SET (10 blocks) at once; block 1's first copy is
    // lost, so 2..9 arrive while 1 is the lowest missing, and 5..9 lie past the bound.
    const w = new Wire(body, (dir, n, copy) => dir === 'res' && n === 1 && copy === 0, { client: { mode: 'rfc', maxAhead: 4 } });
    void w.client.start();
    const r = await settledAfter(w, 120_000);
    expect(r?.ok?.kind).toBe('complete');
    expect(w.client.stats.beyond).toBeGreaterThanOrEqual(5);
    expect(w.received).toEqual(body);
  });

  it('a hole that never fills ends in TIMEOUT (no hang); the stream got exactly the bytes before it', async () => {
    const body = bytes(20 * 1024, 5);
    const written: Uint8Array[] = [];
    const buffer = new ReorderBuffer({ maxBlocks: 64, write: (d) => void written.push(d) });
    const w = new Wire(body, (dir, n) => dir === 'res' && n === 7, { client: { mode: 'paced', maxAhead: 64, onBlock: (b) => buffer.push(b.offset, b.data) } });
    void w.client.start();
    const r = await settledAfter(w, 600_000);
    expect(r?.error).toMatchObject({ code: 'TIMEOUT' });
    expect(concatBytes(...written)).toEqual(body.subarray(0, 7 * 1024));
    expect(buffer.waiting).toBe(12);
    await expect(buffer.finish(body.length)).rejects.toMatchObject({ code: 'BLOCK_OUT_OF_ORDER' });
  });

  it('a resume whose block record ends at a held block (probed again) still fetches the rest', async () => {
    const body = bytes(40 * 1024, 6);
    // A part's map is as long as the highest block written: here 20 blocks, all held, of 40.
    const held = new BlockBitmap(20);
    for (let n = 0; n < 20; n++) held.set(n);
    const w = new Wire(body, () => false, { client: { mode: 'paced', held } });
    void w.client.start();
    const r = await settledAfter(w, 10_000);
    expect(r?.ok?.kind).toBe('complete');
    expect(w.received.subarray(20 * 1024)).toEqual(body.subarray(20 * 1024));
  });
});
