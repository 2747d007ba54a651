import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { RecordLog } from '../../src/flash/record-log.js';

/** Payload for the n-th append: its first 4 bytes say n. */
function payload(n: number, size: number): Uint8Array {
  const p = new Uint8Array(size).fill(n & 0xff);
  new DataView(p.buffer).setUint32(0, n);
  return p;
}

describe('RecordLog property: after any cuts the newest record is the last or the one being written', () => {
  it('holds over geometries, payload sizes and cut schedules', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          ebsLog2: fc.integer({ min: 6, max: 10 }),
          alignLog2: fc.integer({ min: 0, max: 5 }),
          pages: fc.integer({ min: 2, max: 4 }),
          payloadSize: fc.integer({ min: 4, max: 40 }),
          appends: fc.integer({ min: 1, max: 60 }),
          cuts: fc.array(fc.integer({ min: 0, max: 30 }), { maxLength: 6 }),
          seed: fc.integer(),
          scatter: fc.boolean(),
        }),
        async ({ ebsLog2, alignLog2, pages, payloadSize, appends, cuts, seed, scatter }) => {
          const ebs = 2 ** ebsLog2;
          const writeAlignment = Math.min(2 ** alignLog2, ebs);
          fc.pre(payloadSize + 12 <= ebs);
          const flash = new MemoryFlash({
            size: pages * ebs,
            eraseBlockSize: ebs,
            writeAlignment,
            random: mulberry32(seed),
            tornWrite: scatter ? 'scatter' : 'prefix',
          });
          const area = { offset: 0, size: pages * ebs };
          const opts = { kind: 3, payloadSize };
          let committed = 0; // highest n whose append resolved
          const queue = [...cuts];
          for (let power = 0; power < 100; power++) {
            const cut = queue.shift();
            if (cut === undefined) flash.cancelCut();
            else flash.cutAfter(cut);
            const log = await RecordLog.open(flash, area, opts);
            const latest = log.latest();
            const n = latest === undefined ? 0 : new DataView(latest.payload.buffer).getUint32(0);
            // never older than the last acknowledged append, never newer than the one in flight
            expect(n === committed || n === committed + 1).toBe(true);
            if (latest) expect(latest.payload).toEqual(payload(n, payloadSize));
            committed = n;
            try {
              for (let k = n + 1; k <= appends; k++) {
                await log.append(payload(k, payloadSize));
                committed = k;
              }
              break;
            } catch (e) {
              if (!isCoapfwError(e, 'POWER_CUT')) throw e;
              flash.powerOn();
            }
          }
          const final = (await RecordLog.open(flash, area, opts)).latest();
          expect(final?.payload).toEqual(appends > 0 ? payload(appends, payloadSize) : undefined);
        },
      ),
      { numRuns: 300, seed: 20261123 },
    );
  });
});
