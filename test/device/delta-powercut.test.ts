/**
 * Power cuts at every flash operation of applying a delta on an A/B device
 * (frames of one 1 KiB erase block: one `applying` journal record per
 * frame), through install, swap and confirm. Every run ends with the new
 * image confirmed without ever fetching the full image, every boot on the
 * way runs a verified image, and a resume re-fetches at most the delta
 * blocks of the frame in progress plus the header block.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { decodeDeltaHeader, frameCount } from '../../src/delta/format.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import type { UpdateEvent } from '../../src/device/states.js';
import { runUpdate } from '../../src/device/updater.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { toyExecutable } from '../delta/helpers.js';
import { blobPath, release, serveRelease, updateOptions } from './inplace-helpers.js';
import { hex, MemUpdateServer } from './update-helpers.js';

const EBS = 1024;
const A = toyExecutable(12_000, 31);
const B = toyExecutable(12_000, 31, 1, 4_000, 150);
const R = release(B, 2, { deltaFrom: A, frameSize: 1024 });
const DELTA = R.blobs.find((b) => b.role === 'delta')!.bytes;

interface Device {
  flash: MemoryFlash;
  layout: FlashLayout;
  server: MemUpdateServer;
  runtime: FakeRuntime;
  resumes: number;
}

const servers: MemUpdateServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});
const results: Record<string, unknown>[] = [];
afterAll(() => console.log(JSON.stringify({ test: 'delta-powercut', ...results[0] })));

describe('power cuts while a delta is applied', () => {
  it('a cut at every flash operation: every boot verified, every run ends confirmed from the delta alone, resumes at the frame', { timeout: 600_000 }, async () => {
    const slotSize = 12 * 1024;
    const g = { size: 2 * slotSize + 5 * EBS, eraseBlockSize: EBS, writeAlignment: 4 };
    const layout = createLayout(g, { slotSize });
    const factory = new MemoryFlash(g);
    await provisionDevice(factory, layout, A, 1);
    const provisioned = await factory.read(0, g.size);
    const deltaBlocks = Math.ceil(DELTA.length / 1024);
    const frames = frameCount(decodeDeltaHeader(DELTA));
    const extra: number[] = [];
    let applyingResumes = 0;

    const report = await powerCutSweep<Device, string>({
      setup: async (seed) => {
        const server = new MemUpdateServer();
        servers.push(server);
        serveRelease(server, R);
        return { flash: new MemoryFlash({ ...g, contents: provisioned, random: mulberry32(seed) }), layout, server, runtime: new FakeRuntime(seed), resumes: 0 };
      },
      run: async (d) => {
        for (let i = 0; i < 8; i++) {
          const p = await powerOn(d.flash, d.layout);
          const running = hex(p.boot.image.digest);
          expect([hex(sha256(A)), hex(sha256(B))]).toContain(running);
          expect(hex(await hashArea(d.flash, d.layout.primary, p.boot.image.size))).toBe(running);
          if (running === hex(sha256(B)) && p.installedSequence === 2) return 'B';
          const onEvent = (e: UpdateEvent): void => {
            if (e.type === 'resume' && e.phase === 'applying') d.resumes++;
            // The delta must never be given up for the full image because of a cut.
            if (e.type === 'restart') throw new Error(`restart: ${e.reason}`);
          };
          const o = updateOptions(d.server, d.flash, d.layout, d.runtime, { onEvent });
          const st = await runUpdate(o.opts).finally(o.close);
          expect(st.result, JSON.stringify(st)).toBe('installed');
        }
        throw new Error('device did not settle');
      },
      check: async (result, d, { cutIndex, restarts }) => {
        expect(result).toBe('B');
        expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
        expect(d.server.servedOf(blobPath(R, 'image'))).toBe(0);
        const served = d.server.servedOf(blobPath(R, 'delta'));
        if (cutIndex === undefined) expect(served).toBe(deltaBlocks);
        else {
          // Per cut: the header block, and the blocks of the frame in progress (at most 2 here) with the one in flight.
          expect(served, `cut at ${cutIndex}`).toBeLessThanOrEqual(deltaBlocks + 4 * restarts);
          extra.push(served - deltaBlocks);
        }
        applyingResumes += d.resumes;
      },
    });
    expect(report.cutsHit).toBe(report.runs);
    expect(applyingResumes).toBeGreaterThan(frames / 2);
    results.push({ imageBytes: B.length, deltaBytes: DELTA.length, frames, operations: report.ops, cutRuns: report.runs, resumedAtAFrame: applyingResumes, deltaBlocksRefetchedPerCut: { max: Math.max(...extra), mean: +(extra.reduce((a, b) => a + b, 0) / extra.length).toFixed(2) } });
  });
});
