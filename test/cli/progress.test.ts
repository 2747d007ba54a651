/**
 * The progress bar (src/cli/progress.ts) frame by frame on a fake terminal,
 * and `coapfw get` drawing it: every frame of a transfer carries the bar,
 * the percentage and the total, not only the first one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { formatBytes, progressBar } from '../../src/cli/progress.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';

/** A stderr that says it is a terminal, and what was written to it. */
function terminal(columns = 100) {
  const stderr = Object.assign(new PassThrough(), { isTTY: true, columns });
  const stdout = new PassThrough();
  let text = '';
  stderr.on('data', (d) => (text += d));
  return { io: { stdout, stderr }, text: () => text, frames: () => text.split('\r').filter((f) => f !== '') };
}

describe('progressBar', () => {
  it('is active only on a terminal (get then skips per-block progress on a pipe)', () => {
    expect(progressBar(terminal().io, 'x').active).toBe(true);
    const pipe = new PassThrough();
    const quiet = progressBar({ stdout: new PassThrough(), stderr: pipe }, 'x');
    expect(quiet.active).toBe(false);
    quiet.update(1, 2);
    quiet.done();
    expect(pipe.read()).toBeNull();
  });

  it('draws bar, percentage, sizes and rate, throttled, and ends the line once', () => {
    let t = 0;
    const term = terminal();
    const bar = progressBar(term.io, 'fw.img', () => t);
    bar.update(1024, 10_240);
    t = 50;
    bar.update(2048, 10_240); // within 100 ms of the last frame: not drawn
    t = 1000;
    bar.update(5120, 10_240);
    t = 1010;
    bar.update(10_240, 10_240); // the final frame is always drawn
    bar.done();
    bar.done();
    const frames = term.frames();
    expect(frames).toHaveLength(3);
    expect(frames[0]).toBe('fw.img [####....................................]  10% 1.0 KiB/10.0 KiB\x1b[K');
    // 4096 bytes since the first frame in 1 s
    expect(frames[1]).toBe('fw.img [####################....................]  50% 5.0 KiB/10.0 KiB 4.0 KiB/s\x1b[K');
    expect(frames[2]).toMatch(/^fw\.img \[#{40}\] 100% 10\.0 KiB\/10\.0 KiB [\d.]+ KiB\/s\x1b\[K\n$/);
    expect(term.text().endsWith('\n')).toBe(true);
    expect(term.text().split('\n')).toHaveLength(2); // exactly one newline
  });

  it('shows a note on the same line until data flows, and no newline when nothing was drawn', () => {
    let t = 0;
    const term = terminal(60);
    const bar = progressBar(term.io, 'x', () => t);
    bar.note('waiting for 127.0.0.1:5683 … 3 s without an answer');
    bar.update(100, undefined); // drawn at once after a note
    t = 200;
    bar.update(200, undefined);
    bar.done();
    expect(term.frames()).toEqual(['x: waiting for 127.0.0.1:5683 … 3 s without an answer\x1b[K', 'x 100 B\x1b[K', 'x 200 B 500 B/s\x1b[K\n']);
    const quiet = terminal();
    progressBar(quiet.io, 'y').done();
    expect(quiet.text()).toBe('');
  });

  it('is silent when stderr is not a terminal', () => {
    const stderr = new PassThrough();
    let text = '';
    stderr.on('data', (d) => (text += d));
    const bar = progressBar({ stdout: new PassThrough(), stderr }, 'z');
    bar.update(1, 2);
    bar.note('waiting');
    bar.done();
    expect(text).toBe('');
  });

  it('formats sizes in binary units', () => {
    expect([0, 1023, 1536, 3 * 1024 * 1024, 5 * 1024 ** 3].map(formatBytes)).toEqual(['0 B', '1023 B', '1.5 KiB', '3.0 MiB', '5.0 GiB']);
  });
});

describe('coapfw get on a terminal', () => {
  let dir: string;
  let server: FileServer;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coapfw-progress-'));
    await writeFile(join(dir, 'big.bin'), new Uint8Array(64 * 1024).fill(7));
    server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the total and the percentage in every frame after block 0', async () => {
    const term = terminal();
    const out = join(dir, 'got.bin');
    const code = await main(['get', `coap://127.0.0.1:${server.address().port}/files/big.bin`, '-o', out, '--block-size', '16'], term.io);
    expect(code, term.text()).toBe(0);
    const frames = term.frames().filter((f) => f.startsWith('got.bin ['));
    // 4,096 blocks of 16 bytes take well over 200 ms: several frames.
    expect(frames.length).toBeGreaterThan(2);
    for (const f of frames) expect(f).toMatch(/^got\.bin \[[#.]+\] +\d+% [\d.]+ (B|KiB)\/64.0 KiB/);
    expect(frames.at(-1)).toMatch(/ 100% 64.0 KiB\/64.0 KiB .*\n/);
    expect(term.text().endsWith(`\n${out}: 65536 bytes in 4096 blocks (Q-Block2)\n`)).toBe(true);
  });
});
