/**
 * Soak (issue 8, item 12): a real `coapfw device update` process (the node
 * process itself, from dist/, built by `npm test`) on a FileFlash, SIGKILLed
 * at 50 random moments spread across a 4 MiB update (download, install, the
 * swap at the reboot, confirm), each time started again. After every kill:
 * the chip must boot a verified image (the old one or the new one, checked
 * on a copy, so nothing is written), the journal and the swap must never go
 * back, and the next process must resume exactly where the journal says (no
 * download started over). Kill moments are drawn from a seeded PRNG, as
 * fractions of a clean run's work: in the download a stream position (the
 * process is killed at that image request), after it a time into install,
 * swap and confirm. A process killed while starting up also counts (it is a
 * kill like any other); the chip is provisioned before the kills start.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { boot, readBootState } from '../../src/device/boot.js';
import type { BootState } from '../../src/device/boot-state.js';
import { FACTORY_IMAGE, simulatedLayout } from '../../src/device/file-device.js';
import { FileFlash } from '../../src/flash/file.js';
import { Journal, type ResumeRecord } from '../../src/flash/journal.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import type { Peer } from '../../src/core/transport.js';
import { tapTransport } from '../../src/testing/tap.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { CLASS, hex, image, isImageRequest, VENDOR, releaseDir } from './update-helpers.js';

const BIN = join(import.meta.dirname, '../../dist/src/cli/bin.js');
const MIB = 1024 * 1024;
const IMAGE = image(4 * MIB, 21);
const BLOCKS = IMAGE.length / 1024;
// Two 4 MiB slots, scratch, boot log and journal (5 erase blocks) and the trust area (4).
const FLASH_SIZE = 2 * 4 * MIB + 9 * 4096;
const KILLS = 50;

/**
 * Notes when the server receives image requests (Uri-Path fw/...). The first
 * one counts only from a client port not seen before `expectNewClient()`:
 * datagrams a killed process sent just before it died may be handled late.
 */
class RequestClock {
  firstImageRequestAt = 0;
  lastImageRequestAt = 0;
  /** Image requests from the newest client. */
  newClientRequests = 0;
  private readonly seen = new Set<number>();
  private old = new Set<number>();
  expectNewClient(): void {
    this.old = new Set(this.seen);
    this.firstImageRequestAt = 0;
    this.newClientRequests = 0;
  }
  /** The server's transport tap (tapTransport). */
  readonly received = (data: Uint8Array, peer: Peer): void => {
    this.seen.add(peer.port);
    if (!isImageRequest(data)) return;
    this.lastImageRequestAt = performance.now();
    if (!this.old.has(peer.port)) {
      this.newClientRequests++;
      if (this.firstImageRequestAt === 0) this.firstImageRequestAt = this.lastImageRequestAt;
    }
  };
}

let dir: string;
let watch: RequestClock;
let server: FileServer;
let uri: string;

beforeAll(async () => {
  dir = await releaseDir('coapfw-soak-', IMAGE, 4);
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  watch = new RequestClock();
  server = await startFileServer({ dir: join(dir, 'srv'), transport: tapTransport(udp, { received: watch.received }), refreshMs: 0 });
  uri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  /** performance.now() at spawn. */
  started: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * When to SIGKILL a process. A moment in the download is a number of image
 * requests this process makes (`requests`); a moment after it, `ms` after
 * the process is done downloading: after its `requests`-th request, or
 * `idleStartMs` after its spawn when it has nothing left to download (it
 * resumes an install, a swap or a confirm first).
 */
interface KillPlan {
  readonly requests: number;
  readonly ms: number;
  readonly idleStartMs: number | undefined;
}

/** Start `coapfw device update` on `flash`; SIGKILL the node process as `plan` says, unless it ends first. */
function device(flash: string, plan?: KillPlan): Promise<Run> {
  // Kill moments in the download are image requests, one per block: Block2 (Q-Block2 asks for many at once).
  const args = [BIN, 'device', 'update', uri, '--flash', flash, '--flash-size', String(FLASH_SIZE), '--trust', join(dir, 'pub.hex'), '--vendor-id', hex(VENDOR), '--class-id', hex(CLASS), '--no-report', '--no-qblock2'];
  watch.expectNewClient();
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  // Without a kill moment reached in 60 s the process is hung: killed, and the test fails on that.
  let killAt = plan === undefined ? Infinity : t0 + (plan.idleStartMs === undefined ? 60_000 : plan.idleStartMs + plan.ms);
  const poll = setInterval(() => {
    if (plan !== undefined && plan.idleStartMs === undefined && watch.newClientRequests >= plan.requests) {
      killAt = Math.min(killAt, (plan.ms === 0 ? performance.now() : watch.lastImageRequestAt) + plan.ms);
    }
    if (performance.now() >= killAt) child.kill('SIGKILL');
  }, 1);
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearInterval(poll);
      resolve({ started: t0, code, signal, stdout, stderr, ms: performance.now() - t0 });
    }),
  );
}

/** A device in the field: its chip file created and provisioned (`coapfw device boot`), before the kills start. */
async function provisioned(name: string): Promise<string> {
  const path = join(dir, name);
  const r = await new Promise<number | null>((resolve) => {
    const p = spawn(process.execPath, [BIN, 'device', 'boot', '--flash', path, '--flash-size', String(FLASH_SIZE)], { stdio: 'ignore' });
    p.on('close', resolve);
  });
  expect(r).toBe(0);
  return path;
}

/** How far an update has come, from the journal and the boot state: never allowed to go back. */
function progress(rec: ResumeRecord | undefined, state: BootState | undefined, image: string): number {
  if (rec === undefined || state === undefined) return 0;
  if (rec.phase === 'idle') return rec.installedSeq === 4 ? 6e9 : 0;
  if (rec.phase === 'fetching') return 1e9 + rec.nextBlock;
  if (rec.phase === 'fetched') return 2e9;
  // installing: requested, then the swap step by step, then the new image running (test, then confirmed).
  if (state.swap !== null) return 3e9 + 1 + state.swap.index * 3 + state.swap.step;
  const running = state.components[0]!.primary;
  if (running !== null && hex(running.digest) === image) return 4e9 + ['test-pending', 'testing', 'confirmed'].indexOf(state.primaryMode);
  return 3e9;
}

/** The state a killed process left: journal, boot state, and what a boot would run (on a copy: nothing is written). */
async function inspect(path: string): Promise<{ rec: ResumeRecord | undefined; state: BootState | undefined; runs: string }> {
  // Killed while the chip file was created: nothing there yet (FileFlash creates it whole or not at all).
  if ((await stat(path).catch(() => undefined))?.size !== FLASH_SIZE) return { rec: undefined, state: undefined, runs: 'unprovisioned' };
  const flash = await FileFlash.open(path, { size: FLASH_SIZE }); // takes over the killed process's stale lock
  try {
    const layout = simulatedLayout(flash);
    const rec = (await Journal.open(flash, layout)).latest();
    const state = await readBootState(flash, layout);
    // Killed while provisioning: no boot record yet, the next process provisions again.
    if (state === undefined) return { rec, state, runs: 'unprovisioned' };
    const copy = new MemoryFlash({ size: FLASH_SIZE, contents: await flash.read(0, FLASH_SIZE) });
    return { rec, state, runs: hex((await boot(copy, layout)).image.digest) };
  } finally {
    await flash.close();
  }
}

describe('soak: 50 SIGKILLs of a real device process across a 4 MiB update', () => {
  it('every kill leaves a bootable chip, every resume continues where the journal says, every update ends confirmed', { timeout: 600_000 }, async () => {
    expect(existsSync(BIN), 'run `npm run build` first (npm test does)').toBe(true);
    const clean = await device(join(dir, 'clean.bin'));
    expect(clean.code, clean.stderr).toBe(0);
    // The clean run's timeline: start-up until the first image request, the download, then install, swap, confirm.
    // The clean run's timeline: the download (BLOCKS requests), then install, swap at the reboot, confirm.
    const download = watch.lastImageRequestAt - watch.firstImageRequestAt;
    const after = clean.started + clean.ms - watch.lastImageRequestAt;
    const work = download + after;
    // Start-up of a process with nothing left to download: node, imports, the chip, power-on, the envelope
    // fetched and verified (what an up-to-date run does); then it checks the slot, installs, swaps, confirms.
    const probe = await device(join(dir, 'clean.bin'));
    const idleStartMs = probe.ms;
    const rnd = mulberry32(20240);
    const kills = Array.from({ length: KILLS }, () => rnd()).sort((a, b) => a - b);
    const image = hex(sha256(IMAGE));
    const factory = hex(sha256(FACTORY_IMAGE));
    let landed = 0;
    let resumesChecked = 0;
    let restarts = 0;
    let updates = 0;
    let failures = 0;
    let reverts = 0;
    const killedIn: Record<string, number> = {};
    let round = 0;
    let last = 0;
    let flash = await provisioned(`soak-${round}.bin`);
    let before: { rec: ResumeRecord | undefined } = { rec: undefined };
    let lastProgress = -1;
    for (let k = 0; landed < KILLS && k < KILLS * 3; k++) {
      // The next kill moment, a fraction of the clean run's work: in the download, a stream position (block); after it, a time.
      const at = kills[landed]! * work;
      const resumeAt = before.rec?.phase === 'fetching' && before.rec.etag.length > 0 ? Math.floor(before.rec.nextBlock / 4) * 4 : 0;
      const downloading = before.rec === undefined || before.rec.phase === 'fetching' || (before.rec.phase === 'idle' && before.rec.installedSeq === 0);
      const plan: KillPlan =
        at < download
          ? { requests: Math.max(1, Math.round((at / download) * BLOCKS) - resumeAt), ms: 0, idleStartMs: undefined }
          : { requests: BLOCKS - resumeAt, ms: at - Math.max(download, last * work), idleStartMs: downloading ? undefined : idleStartMs };
      const run = await device(flash, plan);
      expect(run.ms, 'a process that should download never asked for the image').toBeLessThan(55_000);
      const resumed = /resuming at block (\d+) \((\w+)\)/.exec(run.stderr);
      if (/download restarted/.test(run.stderr)) restarts++;
      if (resumed && before.rec?.phase === 'fetching' && before.rec.etag.length > 0) {
        // Resumed at the start of the erase block holding the journal's next block (1 KiB blocks, 4 KiB erase blocks).
        expect(Number(resumed[1]), `kill ${landed}: ${run.stderr}`).toBe(Math.floor(before.rec.nextBlock / 4) * 4);
        resumesChecked++;
      } else if (resumed && before.rec !== undefined && (before.rec.phase === 'fetched' || before.rec.phase === 'installing')) {
        expect(resumed[2]).toBe(before.rec.phase);
        resumesChecked++;
      }
      if (run.signal === 'SIGKILL') {
        landed++;
        last = kills[landed - 1]!;
        const now = await inspect(flash);
        // A boot of what the kill left runs the old (factory) image or the new one, verified.
        expect([factory, image, 'unprovisioned'], `kill ${landed}`).toContain(now.runs);
        if (now.runs === 'unprovisioned') expect(lastProgress, `kill ${landed}: an update in progress lost its chip`).toBeLessThanOrEqual(0);
        const p = progress(now.rec, now.state, image);
        const phase = now.runs === 'unprovisioned' ? 'provisioning' : (['startup', 'download', 'fetched', 'install-swap', 'test-confirm', 'test-confirm', 'done'][Math.floor(p / 1e9)] ?? '?');
        killedIn[phase] = (killedIn[phase] ?? 0) + 1;
        // A test image that was not confirmed when the power went is swapped back at the next boot (the
        // MCUboot rule this boot model follows), and the update installs it again: the one way back allowed.
        const wasTesting = lastProgress === 4e9 || lastProgress === 4e9 + 1;
        // Reverting, or reverted and installing again (a process that ran the whole revert swap and was killed
        // in the install swap that followed it): back in the install phase, never further back.
        const reverting = now.state?.swap?.kind === 'revert' || (now.runs === factory && now.rec?.phase !== 'idle') || (now.rec?.phase === 'installing' && p >= 3e9);
        if (wasTesting && reverting && p < lastProgress) {
          reverts++;
          lastProgress = 3e9;
        }
        if (p < lastProgress) failures++;
        expect(p, `kill ${landed}: progress went back (${JSON.stringify({ phase: now.rec?.phase, swap: now.state?.swap, mode: now.state?.primaryMode })})`).toBeGreaterThanOrEqual(lastProgress);
        lastProgress = p;
        before = now;
        continue;
      }
      // It finished before its kill: the update must be complete and confirmed; start a new device for the next kills.
      expect(run.code, run.stderr).toBe(0);
      const st = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
      expect(st).toMatchObject({ running: image, installedSequence: 4 });
      expect(st.bootMode === 'confirmed' || st.boot === 'confirmed').toBe(true);
      updates++;
      round++;
      flash = await provisioned(`soak-${round}.bin`);
      before = { rec: undefined };
      lastProgress = -1;
    }
    // Finish the last update.
    const end = await device(flash);
    expect(end.code, end.stderr).toBe(0);
    expect(JSON.parse(end.stdout.trim().split('\n').at(-1)!)).toMatchObject({ running: image, installedSequence: 4 });
    updates++;
    console.log(JSON.stringify({ test: 'device-process-soak', imageBytes: IMAGE.length, cleanRunMs: Math.round(clean.ms), downloadMs: Math.round(download), afterDownloadMs: Math.round(after), kills: landed, killedIn, resumesChecked, downloadRestarts: restarts, updatesCompleted: updates, revertsAfterUnconfirmedTest: reverts, failures }));
    expect(landed).toBe(KILLS);
    expect(restarts).toBe(0);
    // Each resume is checked by the progress that never goes back and by no download restarting; those that
    // got as far as their resume point (the others were killed while starting) also by where they resumed.
    expect(resumesChecked).toBeGreaterThan(0);
  });
});
