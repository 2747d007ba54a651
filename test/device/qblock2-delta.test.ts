/**
 * A delta (A/B device) fetched with Q-Block2 (RFC 9177): in order through
 * the reorder buffer into the applier, only delta blocks fetched; across a
 * power cut it resumes at the journalled frame, asking for the delta from
 * there on only.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import type { UpdateEvent } from '../../src/device/states.js';
import { runUpdate } from '../../src/device/updater.js';
import { isCoapfwError } from '../../src/errors.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout } from '../../src/flash/layout.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { toyExecutable } from '../delta/helpers.js';
import { blobPath, release, serveRelease } from './inplace-helpers.js';
import { CLASS, hex, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR } from './update-helpers.js';

const EBS = 1024;
const A = toyExecutable(16_000, 5);
const B = toyExecutable(16_000, 5, 1, 4_000, 8_000); // 8 000 new bytes: a delta of several blocks
const R = release(B, 2, { deltaFrom: A, frameSize: 1024 });
const DELTA = R.blobs.find((b) => b.role === 'delta')!.bytes;
const DELTA_BLOCKS = Math.ceil(DELTA.length / 1024);

let server: MemUpdateServer;
const servers: MemUpdateServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((x) => x.close()));
});

async function device(seed = 0) {
  server = new MemUpdateServer(6, true);
  servers.push(server);
  serveRelease(server, R);
  const flash = new MemoryFlash({ size: 2 * 25 * 1024 + 5 * EBS, eraseBlockSize: EBS, random: mulberry32(seed) });
  const layout = createLayout(flash, { slotSize: 25 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  const events: UpdateEvent[] = [];
  const run = async (onEvent: (e: UpdateEvent) => void = () => {}) => {
    const c = server.client(systemRuntime);
    try {
      return await runUpdate({
        flash,
        layout,
        request: c.request,
        openStream: c.openStream,
        manifestUri: MANIFEST_URI,
        runtime: systemRuntime,
        trust: TRUST,
        vendorId: VENDOR,
        classId: CLASS,
        onEvent: (e) => (events.push(e), onEvent(e)),
      });
    } finally {
      await c.close();
    }
  };
  return { flash, layout, events, run, server };
}

/** From power-on until B runs confirmed: every boot verified against its digest. */
async function untilB(d: Awaited<ReturnType<typeof device>>): Promise<string> {
  for (let i = 0; i < 8; i++) {
    const p = await powerOn(d.flash, d.layout);
    const running = hex(p.boot.image.digest);
    expect([hex(sha256(A)), hex(sha256(B))]).toContain(running);
    expect(hex(await hashArea(d.flash, d.layout.primary, p.boot.image.size))).toBe(running);
    if (running === hex(sha256(B)) && p.installedSequence === 2) return 'B';
    // The delta is never given up for the full image because of a cut.
    const st = await d.run((e) => {
      if (e.type === 'restart') throw new Error(`restart: ${e.reason}`);
    });
    expect(st.result, JSON.stringify(st)).toBe('installed');
  }
  throw new Error('device did not settle');
}

describe('a delta with Q-Block2', () => {
  it('A to B: only the delta is fetched, by Q-Block2; B boots and confirms', async () => {
    expect(DELTA_BLOCKS).toBeGreaterThan(6);
    const d = await device();
    const status = await d.run();
    expect(status).toMatchObject({ result: 'installed', blocksFetched: DELTA_BLOCKS });
    expect(server.requestsOf(blobPath(R, 'image'))).toBe(0);
    expect(server.qblocksSent).toBe(DELTA_BLOCKS);
    expect(server.requestsOf(blobPath(R, 'delta'))).toBeLessThan(DELTA_BLOCKS);
    expect(d.events.filter((e) => e.type === 'transfer')).toEqual([{ type: 'transfer', image: 0, mode: 'qblock2' }]);
    expect(d.events.find((e) => e.type === 'delta')).toMatchObject({ frames: Math.ceil(B.length / 1024) });
    const p = await powerOn(d.flash, d.layout);
    expect([hex(p.boot.image.digest), p.outcome]).toEqual([hex(sha256(B)), 'confirmed']);
  });

  it('a power cut mid-delta: the next run resumes at the journalled frame and asks for the delta from there', async () => {
    const d = await device();
    let blocks = 0;
    await expect(d.run((e) => void (e.type === 'block' && ++blocks === Math.ceil(DELTA_BLOCKS / 2) && d.flash.cutAfter(0)))).rejects.toSatisfy((e) => isCoapfwError(e, 'POWER_CUT'));
    d.flash.powerOn();
    await powerOn(d.flash, d.layout);
    const asked: number[] = [];
    const delta = blobPath(R, 'delta');
    server.beforeServe = (p, num) => void (p === delta && asked.push(num));
    d.events.length = 0;
    const status = await d.run();
    expect(status).toMatchObject({ result: 'installed', restarts: 0 });
    const resume = d.events.find((e) => e.type === 'resume');
    expect(resume).toMatchObject({ phase: 'applying' });
    // The header block (Block2, one request) and then the delta from the resumed frame's block on.
    expect(asked[0]).toBe(0);
    expect(asked[1]).toBeGreaterThan(0);
    expect(Math.min(...asked.slice(1))).toBe(asked[1]);
    expect(status.blocksFetched).toBe(DELTA_BLOCKS - asked[1]!);
    const p = await powerOn(d.flash, d.layout);
    expect([hex(p.boot.image.digest), p.outcome]).toEqual([hex(sha256(B)), 'confirmed']);
  });

  it('a power cut at every second flash operation: every boot verified, every run ends with B from the delta alone', async () => {
    const report = await powerCutSweep({
      setup: device,
      run: untilB,
      cutIndexes: (ops) => Array.from({ length: Math.ceil(ops / 2) }, (_, i) => i * 2),
      check: async (result, d, { cutIndex, restarts }) => {
        expect(result).toBe('B');
        expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
        expect(d.server.requestsOf(blobPath(R, 'image'))).toBe(0);
        // Per cut: at most the frame in progress again, with what was in flight or waiting (maxAhead 32 covers the delta).
        if (cutIndex === undefined) expect(d.server.qblocksSent).toBe(DELTA_BLOCKS);
        else expect(d.server.qblocksSent).toBeLessThanOrEqual(DELTA_BLOCKS * (1 + restarts));
      },
    });
    expect(report.ops).toBeGreaterThan(40);
    expect(report.cutsHit).toBe(report.runs);
  }, 300_000);
});
