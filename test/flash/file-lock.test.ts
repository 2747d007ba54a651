/**
 * The FileFlash lock (issue 8, item 1): one process per flash file. A second
 * open gets FLASH_BUSY naming the holder; a lock left by a killed process
 * (pid gone, or pid reused by another process) is taken over; processes
 * racing for a free or stale lock end with exactly one holder.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileFlash } from '../../src/flash/file.js';

const EBS = 512;
const OPTS = { size: 8 * EBS, eraseBlockSize: EBS, writeAlignment: 8 };
const DIST = join(import.meta.dirname, '../../dist/src/flash/file.js');
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-lock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited (so it is free, or reused much later). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

/** `<boot id>:<start ticks>` of a pid, as the lock records it (Linux). */
async function startOf(pid: number): Promise<string> {
  const boot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  return `${boot}:${stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]}`;
}

function lockRecord(o: { pid: number; start?: string; host?: string; nonce?: string }): string {
  return JSON.stringify({ host: hostname(), command: 'coapfw device update (test)', since: '2024-01-01T00:00:00.000Z', nonce: 'feedface', ...o });
}

describe('FileFlash lock', () => {
  it('a second open of an open flash file is FLASH_BUSY naming this process; after close it opens again', async () => {
    const path = join(dir, 'chip.bin');
    const a = await FileFlash.open(path, OPTS);
    const lock = JSON.parse(await readFile(`${path}.lock`, 'utf8')) as { pid: number; command: string };
    expect(lock.pid).toBe(process.pid);
    await expect(FileFlash.open(path, OPTS)).rejects.toMatchObject({ code: 'FLASH_BUSY', message: expect.stringContaining(`in use by process ${process.pid} (`) });
    // Through a symlink too: the lock follows the real path.
    const { symlink } = await import('node:fs/promises');
    await symlink(path, join(dir, 'alias.bin'));
    await expect(FileFlash.open(join(dir, 'alias.bin'), OPTS)).rejects.toMatchObject({ code: 'FLASH_BUSY' });
    await a.close();
    expect(existsSync(`${path}.lock`)).toBe(false);
    const b = await FileFlash.open(path, OPTS);
    await b.close();
    expect(await readdir(dir)).toEqual(['alias.bin', 'chip.bin']);
    // Two opens at once in one process: one gets it, the other FLASH_BUSY (never both).
    for (let i = 0; i < 20; i++) {
      const both = await Promise.allSettled([FileFlash.open(path, OPTS), FileFlash.open(path, OPTS)]);
      expect(both.map((r) => (r.status === 'fulfilled' ? 'HELD' : (r.reason as { code: string }).code)).sort()).toEqual(['FLASH_BUSY', 'HELD']);
      for (const r of both) if (r.status === 'fulfilled') await r.value.close();
    }
  });

  it('takes over the lock of a dead process and of a reused pid; refuses a live holder and a foreign host', async () => {
    const path = join(dir, 'chip.bin');
    await writeFile(path, new Uint8Array(OPTS.size).fill(0xff));
    // Dead owner.
    await writeFile(`${path}.lock`, lockRecord({ pid: deadPid() }));
    await (await FileFlash.open(path, OPTS)).close();
    const sleeper = spawn('sleep', ['30']);
    try {
      await new Promise((r) => sleeper.once('spawn', r));
      const pid = sleeper.pid!;
      // A live process with the recorded start time: held.
      await writeFile(`${path}.lock`, lockRecord({ pid, start: await startOf(pid) }));
      await expect(FileFlash.open(path, OPTS)).rejects.toMatchObject({ code: 'FLASH_BUSY', message: expect.stringContaining(`in use by process ${pid} (coapfw device update (test)) since 2024-01-01`) });
      // The same pid with another start time: the pid was reused, the lock is stale.
      await writeFile(`${path}.lock`, lockRecord({ pid, start: `${(await startOf(pid)).split(':')[0]}:1` }));
      const f = await FileFlash.open(path, OPTS);
      expect(JSON.parse(await readFile(`${path}.lock`, 'utf8'))).toMatchObject({ pid: process.pid });
      await f.close();
    } finally {
      sleeper.kill('SIGKILL');
    }
    // Another host: cannot be judged from here, so it is held, and the message says how to clear it.
    await writeFile(`${path}.lock`, lockRecord({ pid: deadPid(), host: 'elsewhere.example' }));
    await expect(FileFlash.open(path, OPTS)).rejects.toMatchObject({ code: 'FLASH_BUSY', message: expect.stringMatching(/on host elsewhere\.example \(if that host no longer uses it, delete .*chip\.bin\.lock\)/) });
  });

  it('a process killed while it creates a new chip file leaves no short file: the next open creates it whole', { timeout: 60_000 }, async () => {
    expect(existsSync(DIST), 'run `npm run build` first (npm test does)').toBe(true);
    const path = join(dir, 'big.bin');
    const big = { size: 64 * 1024 * 1024, eraseBlockSize: 4096 };
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { FileFlash } from ${JSON.stringify(DIST)}; await FileFlash.open(${JSON.stringify(path)}, ${JSON.stringify(big)});`], { stdio: 'ignore' });
    const closed = new Promise((r) => child.on('close', r));
    // Kill it while the chip is being filled (under its own name or a temporary one).
    const growing = async (): Promise<boolean> => {
      for (const f of [path, `${path}.init`]) if (((await stat(f).catch(() => undefined))?.size ?? 0) > 0) return true;
      return false;
    };
    for (let i = 0; i < 5000 && !(await growing()); i++) await new Promise((r) => setTimeout(r, 1));
    child.kill('SIGKILL');
    await closed;
    expect((await stat(path)).size).not.toBe(big.size); // it did not finish
    const f = await FileFlash.open(path, big);
    try {
      expect((await stat(path)).size).toBe(big.size);
      for (const at of [0, big.size / 2, big.size - 4096]) expect((await f.read(at, 4096)).every((b) => b === 0xff)).toBe(true);
    } finally {
      await f.close();
    }
  });

  it('processes racing for a free or a stale lock: exactly one holds it each time', { timeout: 60_000 }, async () => {
    expect(existsSync(DIST), 'run `npm run build` first (npm test does)').toBe(true);
    const path = join(dir, 'chip.bin');
    await writeFile(path, new Uint8Array(OPTS.size).fill(0xff));
    const release = join(dir, 'release');
    // Each racer reports at once; the holder keeps the lock until the test has every report.
    const child = `
      import { existsSync } from 'node:fs';
      import { FileFlash } from ${JSON.stringify(DIST)};
      const at = Number(process.argv[1]);
      while (Date.now() < at) {} // start together
      try {
        const f = await FileFlash.open(${JSON.stringify(path)}, ${JSON.stringify(OPTS)});
        process.stdout.write('HELD');
        for (let i = 0; i < 2000 && !existsSync(${JSON.stringify(release)}); i++) await new Promise((r) => setTimeout(r, 10));
        await f.close();
      } catch (e) {
        process.stdout.write(String(e.code ?? e.message));
      }`;
    const ROUNDS = 6;
    const RACERS = 6;
    let tried = 0;
    let failures = 0;
    for (let round = 0; round < ROUNDS; round++) {
      // Even rounds start from a stale lock of a dead process (or a stale breaker too), odd rounds from none.
      if (round % 2 === 0) await writeFile(`${path}.lock`, lockRecord({ pid: deadPid(), nonce: `stale${round}` }));
      if (round % 4 === 0) await writeFile(`${path}.lock.break-stale${round}`, lockRecord({ pid: deadPid(), nonce: `breaker${round}` }));
      const at = Date.now() + 800;
      const outs: string[] = [];
      const exits = Array.from({ length: RACERS }, () => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', child, String(at)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout.on('data', (b: Buffer) => {
          out += b.toString();
          outs.push(out);
          if (outs.length === RACERS) void writeFile(release, '');
        });
        return new Promise<void>((resolve) => p.on('close', () => resolve()));
      });
      await Promise.all(exits);
      await rm(release, { force: true });
      tried += RACERS;
      const holders = outs.filter((o) => o === 'HELD').length;
      const busy = outs.filter((o) => o === 'FLASH_BUSY').length;
      if (holders !== 1 || busy !== RACERS - 1) failures++;
      expect(outs.sort()).toEqual(['FLASH_BUSY', 'FLASH_BUSY', 'FLASH_BUSY', 'FLASH_BUSY', 'FLASH_BUSY', 'HELD']);
      // Nothing left behind: no lock (the holder closed), no breaker, no temporary file.
      expect(await readdir(dir)).toEqual(['chip.bin']);
    }
    console.log(JSON.stringify({ test: 'flash-lock-race', rounds: ROUNDS, processesTried: tried, roundsWithoutExactlyOneHolder: failures }));
  });
});
