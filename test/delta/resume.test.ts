import { describe, expect, it } from 'vitest';
import { DeltaApplier, createDelta, decodeDeltaHeader, frameCount, type DeltaCheckpoint } from '../../src/delta/index.js';
import { DELTA_HEADER_BYTES } from '../../src/delta/format.js';
import { noise, toyExecutable } from './helpers.js';

const SOURCE = toyExecutable(8_000, 11);
const TARGET = toyExecutable(8_000, 11, 1, 2_000, 400);

class Cut extends Error {}

/**
 * Apply `delta` from `cp` into `out`, feeding it in `push`-byte pieces;
 * throw Cut at the `cutAt`-th write (the power fails during that write,
 * which lands half). Returns the checkpoints journaled.
 */
async function applyFrom(delta: Uint8Array, out: Uint8Array, cp: DeltaCheckpoint | undefined, push: number, cutAt = Infinity, journal: DeltaCheckpoint[] = []): Promise<DeltaCheckpoint[]> {
  const h = decodeDeltaHeader(delta);
  let writes = 0;
  const a = new DeltaApplier(h, {
    readSource: (o, n) => SOURCE.subarray(o, o + n),
    write: (o, b) => {
      if (++writes === cutAt) {
        out.set(b.subarray(0, b.length >> 1), o);
        throw new Cut();
      }
      out.set(b, o);
    },
    onCheckpoint: (c) => void journal.push(c),
    ...(cp ? { from: cp } : {}),
    chunkSize: 100,
  });
  const from = cp?.deltaOffset ?? DELTA_HEADER_BYTES;
  for (let o = from; o < delta.length; o += push) await a.push(delta.subarray(o, Math.min(o + push, delta.length)));
  a.end();
  return journal;
}

describe('delta resume', () => {
  for (const compression of ['deflate', 'none'] as const) {
    const delta = createDelta(SOURCE, TARGET, { frameSize: 256, compression });

    it(`${compression}: resuming from every checkpoint writes the same bytes`, async () => {
      const out = new Uint8Array(TARGET.length);
      const journal = await applyFrom(delta, out, undefined, 333);
      expect(Buffer.from(out).equals(Buffer.from(TARGET))).toBe(true);
      expect(journal.length).toBe(frameCount(decodeDeltaHeader(delta)));
      for (const cp of [{ frame: 0, deltaOffset: DELTA_HEADER_BYTES, outputOffset: 0 }, ...journal]) {
        const again = noise(TARGET.length, cp.frame + 1); // whatever was there after the checkpoint
        again.set(TARGET.subarray(0, cp.outputOffset));
        await applyFrom(delta, again, cp, 97);
        expect(Buffer.from(again).equals(Buffer.from(TARGET))).toBe(true);
      }
    });

    it(`${compression}: a power cut at every write, resumed from the last journaled checkpoint, ends with the target`, async () => {
      const total = TARGET.length;
      let cuts = 0;
      const start: DeltaCheckpoint = { frame: 0, deltaOffset: DELTA_HEADER_BYTES, outputOffset: 0 };
      for (let cutAt = 1; ; cutAt++) {
        const out = new Uint8Array(total).fill(0xff);
        const journal: DeltaCheckpoint[] = []; // survives the cut, as a flash journal does
        try {
          await applyFrom(delta, out, undefined, 512, cutAt, journal);
          break; // no write left to cut
        } catch (e) {
          if (!(e instanceof Cut)) throw e;
        }
        cuts++;
        const cp = journal[journal.length - 1] ?? start;
        // Everything before the checkpoint is final; the frame being written when power failed is redone.
        expect(Buffer.from(out.subarray(0, cp.outputOffset)).equals(Buffer.from(TARGET.subarray(0, cp.outputOffset)))).toBe(true);
        await applyFrom(delta, out, cp, 700);
        expect(Buffer.from(out).equals(Buffer.from(TARGET))).toBe(true);
      }
      expect(cuts).toBeGreaterThan(total / 100 - 1);
    });
  }
});

