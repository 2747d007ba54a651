/**
 * Benchmark: one full device update of a 256 KiB image over loopback UDP
 * (file server on 127.0.0.1, 1024-byte blocks): time of the download +
 * verify + install run and of the reboot (swap, test boot, confirm), flash
 * operations per phase, and bytes written to the resume journal per update;
 * and the flash wear of a 60 KiB update on 1 KiB erase blocks (the 96 KiB
 * board of issue 13) in place on a single bank against A/B with its swap;
 * and the update with Q-Block2 against Block2, on loopback and at 20 ms RTT
 * (bench/update-modes.ts). Prints one JSON object. Run: `npm run -s build && node dist/bench/update.js [runs]`.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { powerOn, provisionDevice } from '../src/device/device.js';
import { runUpdate } from '../src/device/updater.js';
import type { FlashBackend } from '../src/flash/backend.js';
import { FileFlash } from '../src/flash/file.js';
import { createLayout, type FlashArea } from '../src/flash/layout.js';
import { MemoryFlash } from '../src/flash/memory.js';
import { startFileServer } from '../src/server/serve.js';
import { createEnvelope } from '../src/suit/create.js';
import { privateKeyFromSecret } from '../src/suit/keys.js';
import { openClient } from '../src/client/open.js';
import { deviceRun, digestsFor, releaseFiles, serveFiles } from './device-small.js';
import { qblock2VsBlock2 } from './update-modes.js';

const SIZE = 256 * 1024;
const VENDOR = new Uint8Array(16).fill(1);
const CLASS = new Uint8Array(16).fill(2);

interface Ops {
  writes: number;
  erases: number;
  bytesWritten: number;
  journalWrites: number;
  journalBytes: number;
}

/** A flash wrapper counting operations, and those that land in one area. */
class CountingFlash implements FlashBackend {
  ops: Ops = { writes: 0, erases: 0, bytesWritten: 0, journalWrites: 0, journalBytes: 0 };
  constructor(
    private readonly inner: FlashBackend,
    private readonly journal: () => FlashArea,
  ) {}
  get size(): number {
    return this.inner.size;
  }
  get eraseBlockSize(): number {
    return this.inner.eraseBlockSize;
  }
  get writeAlignment(): number {
    return this.inner.writeAlignment;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }
  write(offset: number, data: Uint8Array): Promise<void> {
    this.ops.writes++;
    this.ops.bytesWritten += data.length;
    const j = this.journal();
    if (offset >= j.offset && offset < j.offset + j.size) {
      this.ops.journalWrites++;
      this.ops.journalBytes += data.length;
    }
    return this.inner.write(offset, data);
  }
  erase(offset: number, length: number): Promise<void> {
    this.ops.erases++;
    return this.inner.erase(offset, length);
  }
  take(): Ops {
    const o = this.ops;
    this.ops = { writes: 0, erases: 0, bytesWritten: 0, journalWrites: 0, journalBytes: 0 };
    return o;
  }
}

async function once(kind: 'memory' | 'file', dir: string, manifestUri: string, key: ReturnType<typeof privateKeyFromSecret>, run: number) {
  const geometry = { size: 1024 * 1024, eraseBlockSize: 4096 };
  const layout = createLayout({ ...geometry, writeAlignment: 4 }, { slotSize: 480 * 1024 });
  const chip = kind === 'memory' ? new MemoryFlash(geometry) : await FileFlash.open(join(dir, `flash-${run}.bin`), geometry);
  const flash = new CountingFlash(chip, () => layout.journal);
  await provisionDevice(flash, layout, new Uint8Array(64).fill(0x42), 0);
  await powerOn(flash, layout);
  flash.take();
  const client = await openClient(manifestUri);
  const t0 = performance.now();
  const status = await runUpdate({
    flash,
    layout,
    request: client.request,
    manifestUri,
    runtime: client.runtime,
    trust: { anchors: [{ publicKey: key.publicKey }] },
    vendorId: VENDOR,
    classId: CLASS,
  });
  const t1 = performance.now();
  await client.close();
  const update = flash.take();
  const tBoot = performance.now();
  const p = await powerOn(flash, layout);
  const t2 = performance.now();
  const reboot = flash.take();
  if (status.result !== 'installed' || p.outcome !== 'confirmed') throw new Error(`update did not complete: ${JSON.stringify(status)} ${p.outcome}`);
  if (chip instanceof FileFlash) await chip.close();
  return { updateMs: t1 - t0, rebootMs: t2 - tBoot, blocks: status.blocksFetched, update, reboot };
}

/** A power cut after `cutAfter` blocks, then the resumed run: what it costs. */
async function resumed(manifestUri: string, key: ReturnType<typeof privateKeyFromSecret>, cutAfter: number) {
  const mem = new MemoryFlash({ size: 1024 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(mem, { slotSize: 480 * 1024 });
  await provisionDevice(mem, layout, new Uint8Array(64).fill(0x42), 0);
  const opts = { layout, manifestUri, trust: { anchors: [{ publicKey: key.publicKey }] }, vendorId: VENDOR, classId: CLASS };
  let written = 0;
  const c1 = await openClient(manifestUri);
  try {
    await runUpdate({
      ...opts,
      flash: mem,
      request: c1.request,
      runtime: c1.runtime,
      onEvent: (e) => {
        if (e.type === 'block' && ++written === cutAfter) mem.cutAfter(0);
      },
    });
    throw new Error('bench: the power cut did not happen');
  } catch (e) {
    if (!(e instanceof Error) || !('code' in e) || e.code !== 'POWER_CUT') throw e;
  } finally {
    await c1.close();
  }
  mem.powerOn();
  await powerOn(mem, layout);
  const c2 = await openClient(manifestUri);
  const t0 = performance.now();
  const st = await runUpdate({ ...opts, flash: mem, request: c2.request, runtime: c2.runtime });
  const ms = performance.now() - t0;
  await c2.close();
  // Blocks served twice: those written before the cut (plus the torn one) that the resume fetched again.
  return { cutAfterBlocks: cutAfter, resumedAtBlock: st.blocksResumed, blocksFetchedAgain: written + 1 - st.blocksResumed, resumedRunMs: Number(ms.toFixed(1)) };
}

/**
 * One 60 KiB update (block digests at 1 KiB) on 1 KiB erase blocks: in place
 * on a single bank, and A/B (download into the secondary, swap through the
 * scratch block at the next boot). Flash wear: erases in all, the most
 * erases of one erase block, bytes programmed.
 */
async function wear(): Promise<Record<string, unknown>> {
  const a = new Uint8Array(randomBytes(58 * 1024));
  const b = new Uint8Array(randomBytes(60 * 1024 - 100));
  const served = await serveFiles(releaseFiles(a, b));
  try {
    const digests = digestsFor(b).resource.length;
    const singleBank = await deviceRun(served, served.uri('full.suit'), a, 60 * 1024, 1024, digests, true);
    const ab = await deviceRun(served, served.uri('full.suit'), a, 60 * 1024, 1024, digests);
    const sum = (r: typeof ab): number => Object.values(r.flash.byArea).reduce((n, x) => n + x.erases, 0);
    return { imageBytes: b.length, eraseBlockSize: 1024, singleBank, ab, blockErasesRatio: Number((sum(singleBank) / sum(ab)).toFixed(3)) };
  } finally {
    await served.close();
  }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-bench-update-'));
  const key = privateKeyFromSecret('ed25519', new Uint8Array(randomBytes(32)));
  const img = new Uint8Array(randomBytes(SIZE));
  const digest = sha256(img);
  await writeFile(join(dir, 'app.bin'), img);
  await writeFile(
    join(dir, 'app.suit'),
    createEnvelope({ sequence: 1, vendorId: VENDOR, classId: CLASS, uri: `/fw/sha256/${Buffer.from(digest).toString('hex')}`, digest, size: SIZE }, [key]),
  );
  const server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
  const uri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;
  const out: Record<string, unknown> = { bench: 'device-update', imageBytes: SIZE, blockSize: 1024, eraseBlockSize: 4096, runs, node: process.version };
  try {
    for (const kind of ['memory', 'file'] as const) {
      const results = [];
      for (let i = 0; i < runs; i++) results.push(await once(kind, dir, uri, key, i));
      const r = results[0]!;
      out[kind] = {
        updateMsMedian: Number(median(results.map((x) => x.updateMs)).toFixed(1)),
        rebootMsMedian: Number(median(results.map((x) => x.rebootMs)).toFixed(1)),
        kibPerSecond: Number((SIZE / 1024 / (median(results.map((x) => x.updateMs)) / 1000)).toFixed(0)),
        blocksFetched: r.blocks,
        updateFlashOps: r.update,
        rebootFlashOps: r.reboot,
        journalBytesPerUpdate: r.update.journalBytes + r.reboot.journalBytes,
        journalRecordsPerUpdate: r.update.journalWrites + r.reboot.journalWrites,
      };
    }
    out.resumeAfterPowerCut = await resumed(uri, key, 130);
    out.qblock2VsBlock2 = await qblock2VsBlock2(server.address().port, key, { vendorId: VENDOR, classId: CLASS }, runs);
    out.singleBankVsAB = await wear();
  } finally {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}

main().catch((e) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
