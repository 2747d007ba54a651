import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes } from '@noble/hashes/utils.js';
import fc from 'fast-check';
import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { DeltaApplier, applyDelta, checkDeltaHeader, checkDeltaSource, createDelta, decodeDeltaHeader } from '../../src/delta/index.js';
import { DELTA_HEADER_BYTES, encodeDeltaHeader, type DeltaHeader } from '../../src/delta/format.js';
import { ByteWriter } from '../../src/delta/varint.js';
import { noise } from './helpers.js';

const SOURCE = noise(1000, 1);

function header(over: Partial<DeltaHeader> = {}): DeltaHeader {
  return { codec: 0, windowLog: 0, frameSize: 256, sourceSize: SOURCE.length, targetSize: 300, sourceSha256: sha256(SOURCE), targetSha256: new Uint8Array(32), ...over };
}

/** A delta with hand-written frames: each frame is its command stream, stored (or deflated). */
function craft(h: DeltaHeader, frames: ((w: ByteWriter) => void)[], deflate = false): Uint8Array {
  const parts = [encodeDeltaHeader(h)];
  for (const f of frames) {
    const w = new ByteWriter();
    f(w);
    const body = deflate ? new Uint8Array(deflateRawSync(w.view())) : w.view().slice();
    const fh = new ByteWriter();
    fh.byte(deflate ? 1 : 0);
    fh.uvar(body.length);
    parts.push(fh.view().slice(), body);
  }
  return concatBytes(...parts);
}

const insert = (n: number) => (w: ByteWriter): void => {
  w.uvar(0);
  w.byte(1);
  w.uvar(n);
  w.bytes(new Uint8Array(n));
};

/** Apply with a sink and a source reader that record every access, so bounds can be checked. */
async function run(delta: Uint8Array, expectTargetSize?: number): Promise<{ code: string; block?: number | undefined }> {
  try {
    await applyDelta(delta, SOURCE, expectTargetSize === undefined ? {} : { expectTargetSize });
    return { code: 'ok' };
  } catch (e) {
    if (!isCoapfwError(e)) throw e;
    return { code: e.code, block: e.block };
  }
}

describe('hostile and broken deltas give typed errors', () => {
  it('a well-formed hand-made delta applies (the crafting helper is right)', async () => {
    const d = craft(header({ targetSize: 300 }), [insert(256), insert(44)]);
    const h = decodeDeltaHeader(d);
    const out = new Uint8Array(300).fill(9);
    const a = new DeltaApplier(h, { readSource: (o, n) => SOURCE.subarray(o, o + n), write: (o, b) => void out.set(b, o) });
    await a.push(d.subarray(DELTA_HEADER_BYTES));
    a.end();
    expect(out.every((x) => x === 0)).toBe(true);
  });

  it('header: truncated, wrong magic, version, codec, window, reserved, frame size', async () => {
    const good = encodeDeltaHeader(header());
    const mut = (i: number, v: number): Uint8Array => {
      const b = good.slice();
      b[i] = v;
      return b;
    };
    expect((await run(good.subarray(0, 83))).code).toBe('DELTA_TRUNCATED');
    for (const [i, v] of [[0, 0x58], [4, 2], [5, 2], [6, 9], [7, 1], [9, 3]] as const) expect((await run(mut(i, v))).code).toBe('DELTA_MALFORMED');
    expect((await run(encodeDeltaHeader(header({ frameSize: 1 << 20 }))))).toEqual({ code: 'DELTA_LIMIT', block: undefined });
    expect((await run(encodeDeltaHeader(header({ targetSize: 2 ** 31 }))))).toEqual({ code: 'DELTA_LIMIT', block: undefined });
  });

  it('a delta for another source is refused before anything is written', async () => {
    const d = createDelta(noise(1000, 2), noise(500, 3));
    expect((await run(d)).code).toBe('DELTA_SOURCE_MISMATCH');
    expect((await run(craft(header({ sourceSize: 999 }), [insert(256), insert(44)]))).code).toBe('DELTA_SOURCE_MISMATCH');
    // The check needs only the header and read access to the installed image.
    const reads: number[] = [];
    await expect(checkDeltaSource(decodeDeltaHeader(d), SOURCE.length, (o, n) => (reads.push(o), SOURCE.subarray(o, o + n)))).rejects.toMatchObject({ code: 'DELTA_SOURCE_MISMATCH' });
    expect(reads).toEqual([0]);
  });

  it('output beyond the announced size, a command past its frame, a copy outside the source', async () => {
    expect(await run(craft(header(), [insert(256), insert(44)]), 299)).toEqual({ code: 'DELTA_RANGE', block: undefined });
    expect(await run(craft(header(), [insert(257)]))).toEqual({ code: 'DELTA_RANGE', block: 0 });
    expect(await run(craft(header(), [insert(256), insert(45)]))).toEqual({ code: 'DELTA_RANGE', block: 1 });
    const add = (src0: number, delta: number, len: number) => (w: ByteWriter): void => {
      w.uvar(src0);
      w.byte(0);
      w.uvar(len);
      w.svar(delta);
      w.uvar(len);
      w.uvar(0);
    };
    expect(await run(craft(header(), [add(900, 0, 256), insert(44)]))).toEqual({ code: 'DELTA_RANGE', block: 0 });
    expect(await run(craft(header(), [add(0, -1, 256), insert(44)]))).toEqual({ code: 'DELTA_RANGE', block: 0 });
    expect(await run(craft(header(), [add(744, 0, 256), insert(44)]))).toEqual({ code: 'DIGEST_MISMATCH', block: undefined }); // in range: only the target digest is wrong
  });

  it('checkDeltaHeader holds the header to the sizes the manifest announced', () => {
    const h = header();
    const code = (f: () => void): string | undefined => {
      try {
        f();
        return undefined;
      } catch (e) {
        return isCoapfwError(e) ? e.code : 'other';
      }
    };
    expect(code(() => checkDeltaHeader(h, { targetSize: 300, sourceSize: 1000 }))).toBeUndefined();
    expect(code(() => checkDeltaHeader(h, { targetSize: 301 }))).toBe('DELTA_RANGE');
    expect(code(() => checkDeltaHeader(h, { sourceSize: 999 }))).toBe('DELTA_SOURCE_MISMATCH');
  });

  it('malformed command streams: length 0, unknown command, trailing bytes, short pairs, bytes after the last frame', async () => {
    const stream = (...xs: ((w: ByteWriter) => void)[]) => (w: ByteWriter): void => xs.forEach((x) => x(w));
    expect((await run(craft(header(), [(w) => { w.uvar(0); w.byte(1); w.uvar(0); }, insert(44)]))).code).toBe('DELTA_MALFORMED');
    expect((await run(craft(header(), [(w) => { w.uvar(0); w.byte(7); w.uvar(1); }, insert(44)]))).code).toBe('DELTA_MALFORMED');
    expect((await run(craft(header(), [stream(insert(256), (w) => w.byte(0)), insert(44)]))).code).toBe('DELTA_MALFORMED');
    expect((await run(craft(header(), [(w) => { w.uvar(0); w.byte(0); w.uvar(256); w.svar(0); w.uvar(100); w.uvar(0); }, insert(44)]))).code).toBe('DELTA_MALFORMED');
    expect((await run(craft(header(), [(w) => { w.uvar(0); w.byte(0); w.uvar(256); w.svar(0); w.uvar(0); w.uvar(0); }, insert(44)]))).code).toBe('DELTA_MALFORMED');
    expect((await run(concatBytes(craft(header(), [insert(256), insert(44)]), new Uint8Array([0]))))).toEqual({ code: 'DELTA_MALFORMED', block: undefined });
  });

  it('frame limits: a stored length beyond 2 * frameSize + 64, DEFLATE in a stored delta, a DEFLATE bomb', async () => {
    const big = concatBytes(encodeDeltaHeader(header()), new Uint8Array([0, 0xc3, 0x04])); // stored length 579 > 576
    expect(await run(big)).toEqual({ code: 'DELTA_LIMIT', block: 0 });
    expect((await run(craft(header(), [insert(256), insert(44)], true))).code).toBe('DELTA_MALFORMED');
    const bomb = craft(header({ codec: 1, windowLog: 15 }), [(w) => { w.uvar(0); w.byte(1); w.uvar(256); w.bytes(new Uint8Array(256)); w.bytes(new Uint8Array(100_000)); }], true);
    expect(await run(bomb)).toEqual({ code: 'DELTA_MALFORMED', block: 0 });
    const garbage = concatBytes(encodeDeltaHeader(header({ codec: 1, windowLog: 15 })), new Uint8Array([1, 4, 0xff, 0xff, 0xff, 0xff]));
    expect((await run(garbage)).code).toBe('DELTA_MALFORMED');
  });

  it('truncated at every byte: DELTA_TRUNCATED, never a crash or a write past the end', async () => {
    const target = noise(3000, 8);
    const d = createDelta(SOURCE, target, { frameSize: 256 });
    for (let cut = 0; cut < d.length; cut++) {
      expect((await run(d.subarray(0, cut))).code).toBe('DELTA_TRUNCATED');
    }
  });

  it('fuzz: random corruption yields only typed errors, and reads and writes stay in bounds', async () => {
    const target = noise(2000, 4);
    target.set(SOURCE.subarray(100, 900), 600);
    const good = createDelta(SOURCE, target, { frameSize: 256 });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), async (flips) => {
        const d = good.slice();
        for (const [at, v] of flips) d[DELTA_HEADER_BYTES + (at % (d.length - DELTA_HEADER_BYTES))]! ^= v;
        const h = decodeDeltaHeader(d);
        let last = 0;
        const a = new DeltaApplier(h, {
          readSource: (o, n) => {
            expect(o >= 0 && n >= 1 && o + n <= SOURCE.length).toBe(true);
            return SOURCE.subarray(o, o + n);
          },
          write: (o, b) => {
            expect(o).toBe(last); // strictly in order, never past the target
            last = o + b.length;
            expect(last <= h.targetSize).toBe(true);
          },
        });
        try {
          await a.push(d.subarray(DELTA_HEADER_BYTES));
          a.end();
        } catch (e) {
          expect(isCoapfwError(e) && e.code.startsWith('DELTA_')).toBe(true);
        }
      }),
      { numRuns: 400 },
    );
  });
});
