/**
 * Every power cut with Q-Block2: a full update (download, verify, install,
 * reboot, confirm) of a 24 KiB image with 4 KiB erase blocks from a server
 * answering Q-Block2 (RFC 9177), cut once at every flash operation index and
 * restarted until done. Blocks pass a small reorder buffer (maxAhead 4)
 * on their way to flash; a second sweep loses two blocks of every transfer
 * once, so later blocks wait in it behind the holes when the power goes.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeBlock } from '../../src/codec/block.js';
import { decodeMessage } from '../../src/codec/message.js';
import { OptionNumber } from '../../src/codec/numbers.js';
import { getOption } from '../../src/codec/options.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import type { UpdateEvent } from '../../src/device/states.js';
import { runUpdate } from '../../src/device/updater.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, SERVER, TRUST, VENDOR } from './update-helpers.js';

const A = image(10_000, 1);
const B = image(24 * 1024 - 100, 2); // 24 blocks of 1 KiB, the last one short
const NAMES = new Map([
  [hex(sha256(A)), 'A'],
  [hex(sha256(B)), 'B'],
]);
const BLOCKS = 24;

interface Device {
  flash: MemoryFlash;
  layout: FlashLayout;
  server: MemUpdateServer;
  imagePath: string;
  boots: string[];
  /** Per power-on that fetched image blocks: where the journal said to resume, and the first block asked for. */
  resumes: { expected: number; asked: number }[];
  modes: string[];
  /** Q-Block2 blocks dropped once per power-on (their first copy from the server). */
  drop: ReadonlySet<number>;
}

const servers: MemUpdateServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function setup(seed: number, drop: ReadonlySet<number> = new Set()): Promise<Device> {
  const flash = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096, writeAlignment: 4, random: mulberry32(seed) });
  const layout = createLayout(flash, { slotSize: 28 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  const server = new MemUpdateServer(6, true);
  servers.push(server);
  const imagePath = server.publish(B, 2);
  return { flash, layout, server, imagePath, boots: [], resumes: [], modes: [], drop };
}

/** Loses the first copy of each block in `d.drop` sent to the device in this power-on. */
function loseOnce(d: Device): void {
  const lost = new Set<number>();
  d.server.net.filter = (from, _to, data) => {
    if (from.port !== SERVER.port || d.drop.size === 0) return true;
    const raw = getOption(decodeMessage(data), OptionNumber.Q_BLOCK2);
    if (raw === undefined) return true;
    const num = decodeBlock(raw).num;
    if (!d.drop.has(num) || lost.has(num)) return true;
    lost.add(num);
    return false;
  };
}

/** Checks a boot: the image is A or B and the primary slot really holds it. */
async function checkBoot(d: Device, digest: Uint8Array, size: number, mode: string): Promise<string> {
  const name = NAMES.get(hex(digest));
  expect(name).toBeDefined();
  expect(hex(await hashArea(d.flash, d.layout.primary, size))).toBe(hex(digest));
  d.boots.push(`${name}:${mode}`);
  return name!;
}

/** Where the journal says this power-on's download resumes (resumePoint in download.ts), undefined when it does not download. */
async function journalResume(d: Device): Promise<number | undefined> {
  const rec = (await Journal.open(d.flash, d.layout)).latest();
  if (rec === undefined || rec.phase !== 'fetching' || rec.candidateSeq !== 2) return rec?.phase === 'idle' ? 0 : undefined;
  return rec.etag.length > 0 ? rec.nextBlock : 0;
}

/** The device from power-on until it runs B confirmed; records where each download resumed. */
async function deviceMain(d: Device): Promise<string> {
  for (let i = 0; i < 10; i++) {
    const p = await powerOn(d.flash, d.layout);
    const name = await checkBoot(d, p.boot.image.digest, p.boot.image.size, p.boot.mode);
    if (name === 'B' && p.installedSequence === 2) return 'B';
    const expected = await journalResume(d);
    let asked: number | undefined;
    d.server.beforeServe = (path, num) => {
      if (path === d.imagePath && asked === undefined) asked = num;
    };
    loseOnce(d);
    const c = d.server.client(systemRuntime);
    try {
      const st = await runUpdate({
        flash: d.flash,
        layout: d.layout,
        request: c.request,
        openStream: c.openStream,
        maxAhead: 4,
        manifestUri: MANIFEST_URI,
        runtime: systemRuntime,
        trust: TRUST,
        vendorId: VENDOR,
        classId: CLASS,
        onEvent: (e: UpdateEvent) => void (e.type === 'transfer' && d.modes.push(e.mode)),
      });
      expect(st.result).toBe('installed');
    } finally {
      if (asked !== undefined && expected !== undefined) d.resumes.push({ expected, asked });
      await c.close();
    }
  }
  throw new Error(`device did not settle: ${d.boots.join(' ')}`);
}

async function checkDone(result: string, d: Device): Promise<void> {
  expect(result).toBe('B');
  expect(hex(await hashArea(d.flash, d.layout.primary, B.length))).toBe(hex(sha256(B)));
  expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
  // Every download went on where the journal said, by Q-Block2 each time it completed.
  for (const r of d.resumes) expect(r.asked).toBe(r.expected);
  expect(d.modes.length).toBeGreaterThan(0);
  expect(new Set(d.modes)).toEqual(new Set(['qblock2']));
}

describe('Q-Block2 update under a power cut at every flash operation', () => {
  it('always ends with B confirmed; every boot runs A or B; every resume starts at the journal’s block', async () => {
    let resumed = 0;
    const report = await powerCutSweep<Device, string>({
      setup,
      run: (d) => deviceMain(d),
      check: async (result, d, { cutIndex }) => {
        await checkDone(result, d);
        if (cutIndex === undefined) expect(d.server.qblocksSent).toBe(BLOCKS);
        if (d.resumes.some((r) => r.expected > 0)) resumed++;
      },
    });
    expect(report.runs).toBe(report.ops);
    expect(report.ops).toBeGreaterThan(60);
    expect(report.cutsHit).toBe(report.runs);
    expect(resumed).toBeGreaterThan(10);
  }, 120_000);

  it('with blocks 2 and 9 lost once per power-on (later ones wait in the reorder buffer), every second cut index', async () => {
    const drop = new Set([2, 9]);
    const report = await powerCutSweep<Device, string>({
      setup: (seed) => setup(seed, drop),
      run: (d) => deviceMain(d),
      cutIndexes: (ops) => Array.from({ length: Math.ceil(ops / 2) }, (_, i) => i * 2),
      check: async (result, d, { cutIndex }) => {
        await checkDone(result, d);
        // Uncut: each lost block is sent again once, nothing else twice.
        if (cutIndex === undefined) expect(d.server.qblocksSent).toBe(BLOCKS + drop.size);
      },
    });
    expect(report.cutsHit).toBe(report.runs);
  }, 120_000);
});
