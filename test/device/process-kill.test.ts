/**
 * Process kill: a device process (`coapfw device update`, from dist/, built
 * by `npm test`) on a FileFlash is killed with SIGKILL in the middle of a
 * download from the file server, started again, and finishes without
 * starting over: the server serves the image about once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { createEnvelope } from '../../src/suit/create.js';
import { ImpairedTransport } from '../../src/transport/impaired.js';
import { tapTransport } from '../../src/testing/tap.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { CLASS, hex, image, isImageRequest, KEY, VENDOR } from './update-helpers.js';

const BIN = join(import.meta.dirname, '../../dist/src/cli/bin.js');
const IMAGE = image(64 * 1024, 5);
const BLOCK = 64; // 1024 blocks: slow enough for the kill to land mid-transfer
const PER_ERASE_BLOCK = 4096 / BLOCK;

/** Counts image requests (Uri-Path fw/...) the server receives. */
class ImageRequestCounter {
  imageRequests = 0;
  readonly received = (data: Uint8Array): void => {
    if (isImageRequest(data)) this.imageRequests++;
  };
}

let dir: string;
let server: FileServer;
let fast: FileServer;
let counter: ImageRequestCounter;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-kill-'));
  await mkdir(join(dir, 'srv'));
  const digest = sha256(IMAGE);
  await writeFile(join(dir, 'srv', 'app.bin'), IMAGE);
  await writeFile(
    join(dir, 'srv', 'app.suit'),
    createEnvelope({ sequence: 4, vendorId: VENDOR, classId: CLASS, uri: `/fw/sha256/${hex(digest)}`, digest, size: IMAGE.length }, [KEY]),
  );
  await writeFile(join(dir, 'pub.hex'), hex(KEY.publicKey.bytes));
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  // Each response leaves 1 ms late: the transfer takes about a second or more.
  counter = new ImageRequestCounter();
  const transport = tapTransport(new ImpairedTransport(udp, { delayMs: 1 }), { received: counter.received });
  server = await startFileServer({ dir: join(dir, 'srv'), transport, refreshMs: 0, maxBlockSize: BLOCK });
  fast = await startFileServer({ dir: join(dir, 'srv'), host: '127.0.0.1', port: 0, refreshMs: 0 });
});

afterAll(async () => {
  await server?.close();
  await fast?.close();
  await rm(dir, { recursive: true, force: true });
});

function device(
  uri: string,
  flash = 'flash.bin',
  extra: string[] = [],
): { child: ChildProcess; done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const args = [BIN, 'device', 'update', uri, '--flash', join(dir, flash), '--trust', join(dir, 'pub.hex')];
  args.push('--vendor-id', hex(VENDOR), '--class-id', hex(CLASS), '--block-size', String(BLOCK), ...extra);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** The two tests below measure progress in image requests, one per block: Block2 (Q-Block2 asks for many blocks at once). */
const BLOCK2 = ['--no-qblock2'];

describe('device process killed mid-download', () => {
  it('resumes from the journal after SIGKILL and installs without starting over', { timeout: 60_000 }, async () => {
    expect(existsSync(BIN), 'run `npm run build` first (npm test does)').toBe(true);
    const uri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;
    const total = IMAGE.length / BLOCK;

    const first = device(uri, 'flash.bin', BLOCK2);
    // Kill once a good part (but not all) of the image has been served.
    const deadline = Date.now() + 30_000;
    while (counter.imageRequests < total * 0.4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.code).toBeNull(); // killed, not finished
    const servedBeforeKill = counter.imageRequests;
    expect(servedBeforeKill).toBeGreaterThan(total * 0.3);
    expect(servedBeforeKill).toBeLessThan(total);

    const second = await device(uri, 'flash.bin', BLOCK2).done;
    expect(second.code, second.stderr).toBe(0);
    const status = JSON.parse(second.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(status).toMatchObject({ result: 'installed', installedSequence: 4, bootMode: 'test', boot: 'confirmed', running: hex(sha256(IMAGE)) });
    // Resumed at the last journalled erase block: at most one erase block (and the block in flight) again.
    expect(status.blocksResumed as number).toBeGreaterThanOrEqual(servedBeforeKill - PER_ERASE_BLOCK - 2);
    expect((status.blocksResumed as number) + (status.blocksFetched as number)).toBe(total);
    expect(counter.imageRequests).toBeLessThanOrEqual(total + PER_ERASE_BLOCK + 2);
    // The status reports reached the server's tracker; the last one follows the reboot. Over plain
    // coap:// they go under a pseudonym drawn per run, never the device id (device/privacy.ts).
    expect(server.status.get('sim-flash.bin')).toBeUndefined();
    expect(server.status.list().filter((s) => s.device.startsWith('anon-')).map((s) => s.report)).toContainEqual(expect.objectContaining({ result: 'confirmed', installedSequence: 4 }));
  });

  it('a second device process on the same flash file gets FLASH_BUSY naming the first; after SIGKILL of the first the next one takes over and resumes', { timeout: 60_000 }, async () => {
    const uri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;
    const total = IMAGE.length / BLOCK;
    const start = counter.imageRequests;
    const first = device(uri, 'shared.bin', BLOCK2);
    const deadline = Date.now() + 30_000;
    while (counter.imageRequests - start < total * 0.3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const second = await device(uri, 'shared.bin', BLOCK2).done;
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`in use by process ${first.child.pid} \\(.*device update.*\\) since .*\\[FLASH_BUSY\\]`));
    expect(second.stdout).toBe('');
    first.child.kill('SIGKILL');
    expect((await first.done).signal).toBe('SIGKILL');
    // The killed process left its lock file behind: stale (its pid is gone), so the next process takes it over.
    expect(existsSync(join(dir, 'shared.bin.lock'))).toBe(true);
    const third = await device(uri, 'shared.bin', BLOCK2).done;
    expect(third.code, third.stderr).toBe(0);
    const status = JSON.parse(third.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    expect(status).toMatchObject({ result: 'installed', installedSequence: 4, boot: 'confirmed', running: hex(sha256(IMAGE)) });
    expect(status.blocksResumed as number).toBeGreaterThan(0);
    expect((status.blocksResumed as number) + (status.blocksFetched as number)).toBe(total);
    expect(existsSync(join(dir, 'shared.bin.lock'))).toBe(false);
  });

  it('with Q-Block2: killed after its fourth journal record, the next process resumes at the journal and installs', { timeout: 60_000 }, async () => {
    const uri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;
    const total = IMAGE.length / BLOCK;
    const lines = (out: string): Record<string, unknown>[] => out.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    const first = device(uri, 'qblock2.bin', ['--json', '-vv']);
    let out = '';
    first.child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    const deadline = Date.now() + 30_000;
    while ((out.match(/"event":"journal"/g) ?? []).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
    first.child.kill('SIGKILL');
    const killed = await first.done;
    expect(killed.signal, killed.stderr).toBe('SIGKILL');
    // What the killed process journalled last (a line cut by the kill is not one).
    const journalled = lines(killed.stdout.slice(0, killed.stdout.lastIndexOf('\n') + 1)).filter((e) => e.event === 'journal');
    expect(journalled.length).toBeGreaterThanOrEqual(4);
    const next = await device(uri, 'qblock2.bin', ['--json', '-v']).done;
    expect(next.code, next.stderr).toBe(0);
    const events = lines(next.stdout);
    const status = events.at(-1)!;
    expect(status).toMatchObject({ result: 'installed', installedSequence: 4, boot: 'confirmed', running: hex(sha256(IMAGE)) });
    // The journal's last record (or one the kill interrupted the printing of) is where it went on, by Q-Block2.
    expect(status.blocksResumed as number).toBeGreaterThanOrEqual(journalled.at(-1)!.nextBlock as number);
    expect(events.find((e) => e.event === 'resume')).toMatchObject({ fromBlock: status.blocksResumed, phase: 'fetching' });
    expect(events.filter((e) => e.event === 'transfer').map((e) => e.mode)).toEqual(['qblock2']);
    expect((status.blocksResumed as number) + (status.blocksFetched as number)).toBe(total);
  });

  it('power cuts injected at flash operations across download, install, swap and confirm: the next run always finishes confirmed', { timeout: 60_000 }, async () => {
    const uri = `coap://127.0.0.1:${fast.address().port}/files/app.suit`;
    const json = (out: string): Record<string, unknown> => JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    const clean = await device(uri, 'clean.bin', ['--block-size', '1024']).done;
    expect(clean.code, clean.stderr).toBe(0);
    const ops = json(clean.stdout).flashOps as number;
    expect(ops).toBeGreaterThan(100);
    const outcomes: string[] = [];
    for (const frac of [0.1, 0.35, 0.6, 0.75, 0.9, 0.99]) {
      const k = Math.floor(ops * frac);
      const flash = `cut-${k}.bin`;
      const cut = await device(uri, flash, ['--block-size', '1024', '--crash-after-ops', String(k)]).done;
      expect(cut.signal, `op ${k}: ${cut.stderr}`).toBe('SIGKILL');
      const next = await device(uri, flash, ['--block-size', '1024']).done;
      expect(next.code, `op ${k}: ${next.stderr}`).toBe(0);
      const st = json(next.stdout);
      expect(st.running, `op ${k}`).toBe(hex(sha256(IMAGE)));
      expect(st.installedSequence, `op ${k}`).toBe(4);
      expect(st.bootMode === 'confirmed' || st.boot === 'confirmed', `op ${k}`).toBe(true);
      outcomes.push(`${k}:${String(st.result)}:${String(st.blocksResumed)}`);
    }
    // Cuts in the download resume it; cuts after it (install, swap, test boot,
    // confirm) are finished by the next power-on with no download at all.
    expect(outcomes[0]).toMatch(/:installed:[1-9]\d*$/);
    expect(outcomes[1]).toMatch(/:installed:[1-9]\d*$/);
    expect(outcomes.slice(2).every((o) => o.endsWith(':up-to-date:0'))).toBe(true);
  });
});
