import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { FileFlash } from '../../src/flash/file.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout } from '../../src/flash/layout.js';

const EBS = 512;
const OPTS = { size: 10 * EBS, eraseBlockSize: EBS, writeAlignment: 8 };
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-flash-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isCoapfwError(e)) return e.code;
    throw e;
  }
  return 'OK';
}

describe('FileFlash', () => {
  it('creates an erased chip file and keeps NOR semantics across reopen', async () => {
    const path = join(dir, 'chip.bin');
    const f = await FileFlash.open(path, OPTS);
    expect((await stat(path)).size).toBe(OPTS.size);
    expect((await f.read(0, OPTS.size)).every((b) => b === 0xff)).toBe(true);
    await f.write(16, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    expect(await code(f.write(16, new Uint8Array(8)))).toBe('FLASH_NOT_ERASED');
    expect(await code(f.write(4, new Uint8Array(8)))).toBe('FLASH_ALIGNMENT');
    expect(await code(f.erase(8, EBS))).toBe('FLASH_ALIGNMENT');
    expect(await code(f.read(OPTS.size - 1, 2))).toBe('FLASH_RANGE');
    await f.write(EBS, new Uint8Array(EBS));
    await f.close();

    const g = await FileFlash.open(path, OPTS);
    expect([...(await g.read(16, 8))]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await g.erase(0, EBS);
    expect((await g.read(0, EBS)).every((b) => b === 0xff)).toBe(true);
    expect((await g.read(EBS, EBS)).every((b) => b === 0)).toBe(true);
    await g.close();
  });

  it('refuses a file of the wrong size and bad geometry', async () => {
    const path = join(dir, 'small.bin');
    await writeFile(path, new Uint8Array(100));
    await expect(FileFlash.open(path, OPTS)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(FileFlash.open(join(dir, 'x.bin'), { size: 1000, eraseBlockSize: 512 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
    await expect(FileFlash.open(join(dir, 'no/such/dir/x.bin'), OPTS)).rejects.toMatchObject({ code: 'IO_ERROR' });
  });

  it('a journal in a file survives SIGKILL of the writing process', async () => {
    // Transpile the few modules the child needs into the temp dir (the child is plain node).
    const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
    for (const rel of ['errors', 'flash/backend', 'flash/file', 'flash/file-lock', 'flash/crc32', 'flash/layout', 'flash/record-log', 'flash/resume-record', 'flash/journal']) {
      const src = await readFile(join(root, 'src', `${rel}.ts`), 'utf8');
      const out = ts.transpileModule(src, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
      });
      await mkdir(dirname(join(dir, 'lib', `${rel}.js`)), { recursive: true });
      await writeFile(join(dir, 'lib', `${rel}.js`), out.outputText);
    }
    await writeFile(join(dir, 'lib', 'package.json'), '{"type":"module"}');
    const chip = join(dir, 'chip.bin');
    const child = `
      import { FileFlash } from './flash/file.js';
      import { Journal } from './flash/journal.js';
      import { createLayout } from './flash/layout.js';
      const flash = await FileFlash.open(${JSON.stringify(chip)}, ${JSON.stringify(OPTS)});
      const journal = await Journal.open(flash, createLayout(flash, { slotSize: ${2 * EBS} }));
      const z = new Uint8Array(16);
      for (let n = 1; ; n++) {
        await journal.append({ phase: 'fetching', slot: 'secondary', szx: 6, etag: new Uint8Array(0), nextBlock: n,
          imageSize: 1, installedSeq: 0, candidateSeq: 1, reverts: 0, envelopeDigestPrefix: z, imageDigestPrefix: z });
        process.stdout.write(n + '\\n');
      }`;
    await writeFile(join(dir, 'lib', 'child.js'), child);
    const proc = spawn(process.execPath, [join(dir, 'lib', 'child.js')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let acked = 0;
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`child made no progress: ${stderr}`)), 15_000);
      proc.stdout.on('data', (d: Buffer) => {
        const lines = d.toString().trim().split('\n');
        acked = Number(lines[lines.length - 1]);
        if (acked >= 200) {
          clearTimeout(timer);
          proc.kill('SIGKILL');
          resolve();
        }
      });
      proc.on('exit', () => {
        clearTimeout(timer);
        if (acked < 200) reject(new Error(`child exited early: ${stderr}`));
      });
    });
    await exited;
    const flash = await FileFlash.open(chip, OPTS);
    const latest = (await Journal.open(flash, createLayout(flash, { slotSize: 2 * EBS }))).latest();
    await flash.close();
    // Everything acknowledged before the kill is there; at most the appends in flight after it.
    expect(latest).toBeDefined();
    expect(latest!.nextBlock).toBeGreaterThanOrEqual(acked);
  });
});
