/**
 * FileSink batches consecutive blocks into one write (and one map write):
 * held blocks are not in the part yet, a full batch is, the map never claims
 * a block the part lacks (a killed run resumes with exactly what was
 * written), abort writes what is held, and blocks out of order (Q-Block2)
 * land at their offsets.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileSink } from '../../src/client/file-sink.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-sink-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BS = 1024;
const block = (n: number): Uint8Array => Uint8Array.from({ length: BS }, (_, i) => (n * 37 + i) & 0xff);
const STATE = { key: 'coap://x/fw', etag: Uint8Array.of(1, 2, 3, 4), szx: 6 };

async function started(name: string, batchBytes?: number): Promise<FileSink> {
  const sink = new FileSink(join(dir, name), { batchBytes });
  await sink.begin(0);
  await sink.save(STATE);
  return sink;
}

/** What a new process finds (the map's blocks), as a resume sees it. */
async function heldAfterRestart(name: string): Promise<number[]> {
  const p = await new FileSink(join(dir, name)).resumable();
  const out: number[] = [];
  for (let n = p?.blocks?.nextReceived(0) ?? -1; n >= 0; n = p!.blocks!.nextReceived(n + 1)) out.push(n);
  return out;
}

describe('FileSink batching', () => {
  it('holds consecutive blocks and writes them once, on finish at the latest', async () => {
    const sink = await started('a.bin');
    for (let n = 0; n < 3; n++) await sink.write(block(n), n * BS, n);
    // Held, not yet written: neither the part nor the map has them (a kill now refetches them).
    expect((await stat(join(dir, 'a.bin.part'))).size).toBe(0);
    expect(await heldAfterRestart('a.bin')).toEqual([]);
    await sink.finish();
    expect(new Uint8Array(await readFile(join(dir, 'a.bin')))).toEqual(Uint8Array.from([...block(0), ...block(1), ...block(2)]));
  });

  it('writes a full batch before its promise settles, and records exactly those blocks', async () => {
    const sink = await started('b.bin', 2 * BS);
    await sink.write(block(0), 0, 0);
    await sink.write(block(1), BS, 1); // the batch is full: written now
    await sink.write(block(2), 2 * BS, 2); // held
    expect((await stat(join(dir, 'b.bin.part'))).size).toBe(2 * BS);
    expect(await heldAfterRestart('b.bin')).toEqual([0, 1]);
    await sink.abort();
    // abort keeps what arrived for a resume: the held block is written and recorded.
    expect(await heldAfterRestart('b.bin')).toEqual([0, 1, 2]);
    expect(new Uint8Array(await readFile(join(dir, 'b.bin.part'))).subarray(2 * BS)).toEqual(block(2));
  });

  it('blocks out of order land at their offsets; each run is recorded once written', async () => {
    const sink = await started('c.bin');
    const order = [5, 0, 1, 3, 2, 4];
    for (const n of order) await sink.write(block(n), n * BS, n);
    await sink.abort();
    expect(await heldAfterRestart('c.bin')).toEqual([0, 1, 2, 3, 4, 5]);
    const part = new Uint8Array(await readFile(join(dir, 'c.bin.part')));
    for (const n of order) expect(part.subarray(n * BS, (n + 1) * BS), `block ${n}`).toEqual(block(n));
  });

  it.runIf(existsSync('/dev/full'))('a failed write (ENOSPC: the part is /dev/full) fails the write that flushed it, and finish', async () => {
    await symlink('/dev/full', join(dir, 'f.bin.part'));
    const sink = await started('f.bin', 2 * BS);
    expect(sink.write(block(0), 0, 0)).toBeUndefined(); // held
    await expect(sink.write(block(1), BS, 1)).rejects.toMatchObject({ code: 'IO_ERROR', path: join(dir, 'f.bin.part') });
    sink.write(block(2), 2 * BS, 2);
    await expect(sink.finish()).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(await heldAfterRestart('f.bin')).toEqual([]);
  });

  it('batchBytes 0 writes every block at once (the old behaviour); a bad value is refused', async () => {
    const sink = await started('d.bin', 0);
    await sink.write(block(0), 0, 0);
    expect((await stat(join(dir, 'd.bin.part'))).size).toBe(BS);
    expect(await heldAfterRestart('d.bin')).toEqual([0]);
    await sink.abort();
    expect(() => new FileSink(join(dir, 'e.bin'), { batchBytes: -1 })).toThrow(/batchBytes/);
  });
});
