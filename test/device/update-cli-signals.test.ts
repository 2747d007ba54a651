/**
 * Signals reach `coapfw device update` (the real process, from dist/):
 * SIGINT, SIGTERM and SIGHUP stop it promptly with the flash file closed
 * cleanly (exit 130, 143, 129) and the next update resumes from the journal.
 * Started the way `npm exec` starts it (npm_command=exec, below `sh -c`), it
 * stops as a device losing power would when npm is killed with SIGKILL,
 * instead of writing on unseen.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { ImpairedTransport } from '../../src/transport/impaired.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { BIN, runCli } from '../cli/spawn-cli.js';
import { CLASS, hex, image, VENDOR, releaseDir } from './update-helpers.js';

const IMG = image(32 * 1024, 7);
let dir: string;
let server: FileServer;
let uri: string;
let ids: string[];

beforeAll(async () => {
  dir = await releaseDir('coapfw-device-sig-', IMG, 3);
  // 512 blocks of 64 bytes, each answered 5 ms late: a few seconds per update, one block at a time (Block2: with
  // Q-Block2 the blocks overlap and the whole update can end between two looks at its output).
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  server = await startFileServer({ dir: join(dir, 'srv'), transport: new ImpairedTransport(udp, { delayMs: 5 }), refreshMs: 0 });
  uri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;
  ids = ['--trust', join(dir, 'pub.hex'), '--vendor-id', hex(VENDOR), '--class-id', hex(CLASS), '--block-size', '64', '--no-report', '--no-qblock2'];
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const lastJson = (s: string): Record<string, unknown> => JSON.parse(s.trim().split('\n').at(-1)!) as Record<string, unknown>;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(test: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (test()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return test();
}

describe('signals reach coapfw device update', () => {
  it.each([
    ['SIGINT', 130],
    ['SIGTERM', 143],
    ['SIGHUP', 129],
  ] as const)('%s mid-download: exit %i, flash closed cleanly, the next update resumes', { timeout: 60_000 }, async (sig, code) => {
    const flash = join(dir, `${sig}.flash`);
    const p = runCli(['device', 'update', uri, '--flash', flash, ...ids, '-vv']);
    await p.waitFor((_o, e) => /block 150 at/.test(e));
    p.child.kill(sig);
    const r = await p.done;
    expect(r.code, r.err.slice(-300)).toBe(code);
    expect(r.err).toContain(`coapfw device: ${sig}: stopping; the flash file is closed cleanly and the next update resumes from the journal\n`);
    expect(r.out).toBe(''); // no result line: the update did not end
    const status = await runCli(['device', 'status', '--flash', flash]).done;
    expect(status.code, status.err).toBe(0);
    const journal = lastJson(status.out).journal as { phase: string; nextBlock: number };
    expect(journal.phase).toBe('fetching');
    if (sig !== 'SIGTERM') return;
    const again = await runCli(['device', 'update', uri, '--flash', flash, ...ids]).done;
    expect(again.code, again.err).toBe(0);
    expect(lastJson(again.out)).toMatchObject({ result: 'installed', installedSequence: 3, blocksResumed: journal.nextBlock });
    expect(journal.nextBlock).toBeGreaterThan(0);
  });

  it('under npm exec, a SIGKILL of npm stops the device process at once, as a power cut', { timeout: 60_000 }, async () => {
    const flash = join(dir, 'npm.flash');
    const cmd = [process.execPath, BIN, 'device', 'update', uri, '--flash', flash, ...ids, '-vv'].map((a) => `'${a}'`).join(' ');
    // A stand-in for npm: `npm exec` runs the bin through `sh -c` with npm_command=exec.
    const npm = spawn(process.execPath, ['-e', `require('child_process').spawn('sh', ['-c', process.argv[1] + '; true'], { stdio: 'inherit' }); setInterval(() => {}, 1000);`, cmd], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, npm_command: 'exec' },
    });
    let err = '';
    npm.stderr.on('data', (d: Buffer) => (err += d.toString()));
    let device: number | undefined;
    try {
      expect(await until(() => /block 150 at/.test(err), 20_000), err.slice(-300)).toBe(true);
      const sh = Number(readFileSync(`/proc/${npm.pid}/task/${npm.pid}/children`, 'utf8').trim().split(' ')[0]);
      device = Number(readFileSync(`/proc/${sh}/task/${sh}/children`, 'utf8').trim().split(' ')[0]);
      expect(readFileSync(`/proc/${device}/cmdline`, 'utf8')).toContain('device');
      npm.kill('SIGKILL');
      expect(await until(() => !alive(device!), 3000), 'the device process kept running after npm was killed').toBe(true);
      // Its last words were written before it exited; the pipe may hand them to us a moment later.
      const gone = 'coapfw device: the npm process that started us is gone: stopping now, as a power cut would\n';
      await until(() => err.includes(gone), 2000);
      expect(err).toContain(gone);
      // Nothing writes the flash any more, and the journal lets the next run resume.
      const before = readFileSync(flash);
      await new Promise((r) => setTimeout(r, 300));
      expect(readFileSync(flash).equals(before)).toBe(true);
      const again = await runCli(['device', 'update', uri, '--flash', flash, ...ids]).done;
      expect(again.code, again.err).toBe(0);
      expect(lastJson(again.out)).toMatchObject({ result: 'installed', installedSequence: 3 });
      expect(lastJson(again.out).blocksResumed).toBeGreaterThan(0);
    } finally {
      if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
      if (device !== undefined && alive(device)) process.kill(device, 'SIGKILL');
    }
  });
});
