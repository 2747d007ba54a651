/**
 * Single-bank (in-place) updates on the 96 KiB board of the TFTP mail: one
 * 60 KiB slot and a recovery area (staged envelope and digest top list,
 * boot log, journal). The image is overwritten block by block, each block
 * checked before it is written; the bootloader runs only an image that
 * verifies, and otherwise the recovery loader, which finishes the update.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { boot } from '../../src/device/boot.js';
import { bootInPlace } from '../../src/device/boot-inplace.js';
import { provisionDevice } from '../../src/device/device.js';
import { powerOnInPlace, runRecoveryLoader } from '../../src/device/inplace-device.js';
import { runUpdate } from '../../src/device/updater.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createSingleBankLayout, singleBankLayoutSize } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { readStaging } from '../../src/flash/staging.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { blobPath, flipped, release, serveRelease, updateOptions } from './inplace-helpers.js';
import { envelopeFor, hex, image, MemUpdateServer } from './update-helpers.js';

const EBS = 1024;
const A = image(58 * 1024 + 123, 1);
const B = image(60 * 1024 - 77, 2);

let server: MemUpdateServer;
afterEach(async () => server?.close());

async function board() {
  server = new MemUpdateServer();
  const flash = new MemoryFlash({ size: 96 * 1024, eraseBlockSize: EBS });
  const layout = createSingleBankLayout(flash, { slotSize: 60 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  return { flash, layout, runtime: new FakeRuntime(3) };
}

type Board = Awaited<ReturnType<typeof board>>;

function opts(d: Board) {
  return updateOptions(server, d.flash, d.layout, d.runtime);
}

async function update(d: Board) {
  const o = opts(d);
  return runUpdate(o.opts).finally(o.close);
}

async function slotHolds(d: Board, img: Uint8Array): Promise<boolean> {
  return hex(await hashArea(d.flash, d.layout.primary, img.length)) === hex(sha256(img));
}

describe('single-bank layout', () => {
  it('fits the 96 KiB board: 60 KiB slot, 4 KiB staging, 2 KiB boot log, 2 KiB journal; A/B operations refuse it', async () => {
    const g = { size: 96 * 1024, eraseBlockSize: EBS, writeAlignment: 4 };
    expect(singleBankLayoutSize(g, { slotSize: 60 * 1024 })).toBe(68 * 1024);
    const l = createSingleBankLayout(g, { slotSize: 60 * 1024 });
    expect([l.primary.size, l.recovery!.staging.size, l.bootLog.size, l.journal.size, l.secondary.size]).toEqual([60 * 1024, 4096, 2048, 2048, 0]);
    expect(() => createSingleBankLayout(g, { slotSize: 90 * 1024 })).toThrow(expect.objectContaining({ code: 'FLASH_RANGE' }));
    const d = await board();
    await expect(boot(d.flash, d.layout)).rejects.toMatchObject({ code: 'BOOT_STATE' });
  });
});

describe('in-place install', () => {
  it('overwrites the 60 KiB image in place, each erase block erased once, and boots the new image confirmed', async () => {
    const d = await board();
    const r = release(B, 2);
    serveRelease(server, r);
    const before = Uint32Array.from(d.flash.eraseCounts);
    const status = await update(d);
    expect(status).toMatchObject({ result: 'installed', installedSequence: 2, blocksFetched: 60 });
    const slotBlocks = Array.from({ length: 60 }, (_, i) => d.flash.eraseCounts[i]! - before[i]!);
    expect(slotBlocks.every((n) => n === 1)).toBe(true);
    const b = await bootInPlace(d.flash, d.layout);
    expect(b.state === 'run' && hex(b.image.digest)).toBe(hex(sha256(B)));
    expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
    // What the recovery loader would have needed is in the recovery area.
    const staged = await readStaging(d.flash, d.layout.recovery!.staging);
    expect(hex(staged!.envelope)).toBe(hex(r.envelope));
    expect(staged!.topList.length).toBe(64); // 60 blocks, 32 leaves per page: 2 pages
  });

  it('a manifest without block digests is rejected before anything is written: A keeps running', async () => {
    const d = await board();
    server.put(`fw/sha256/${hex(sha256(B))}`, B);
    server.put('manifest.suit', envelopeFor(B, 2));
    const status = await update(d);
    expect(status).toMatchObject({ result: 'rejected', error: 'SUIT_UNSUPPORTED' });
    expect(status.message).toContain('block digests');
    expect(await slotHolds(d, A)).toBe(true);
    expect((await bootInPlace(d.flash, d.layout)).state).toBe('run');
  });

  it('an envelope and top list larger than the recovery area are rejected before anything is written', async () => {
    server = new MemUpdateServer();
    const flash = new MemoryFlash({ size: 96 * 1024, eraseBlockSize: EBS });
    const layout = createSingleBankLayout(flash, { slotSize: 60 * 1024, stagingSize: 1024 });
    await provisionDevice(flash, layout, A, 1);
    const d = { flash, layout, runtime: new FakeRuntime(3) };
    // 64-byte blocks, 2 leaves a page: a 15 KiB top list that 1 KiB of staging cannot hold.
    serveRelease(server, release(B, 2, { blockSize: 64 }));
    expect(await update(d)).toMatchObject({ result: 'rejected', error: 'TOO_LARGE' });
    expect(await slotHolds(d, A)).toBe(true);
  });

  it('a delta release: a single-bank device takes the full image (no delta byte fetched)', async () => {
    const d = await board();
    const r = release(B, 2, { deltaFrom: A, frameSize: 1024 });
    serveRelease(server, r);
    expect(await update(d)).toMatchObject({ result: 'installed' });
    expect(server.servedOf(blobPath(r, 'delta'))).toBe(0);
    expect(server.servedOf(blobPath(r, 'image'))).toBe(60);
    expect(await slotHolds(d, B)).toBe(true);
  });

  it('a flipped byte in block 30: failed (not rejected: the image is half overwritten), nothing of block 30 written; the recovery loader resumes once the server is right', async () => {
    const d = await board();
    const r = release(B, 2);
    serveRelease(server, r);
    const path = blobPath(r, 'image');
    server.put(path, flipped(B, 30 * 1024 + 9), sha256(B).slice(0, 8));
    const status = await update(d);
    expect(status).toMatchObject({ result: 'failed', error: 'DIGEST_MISMATCH', block: 30 });
    const slot = await d.flash.read(d.layout.primary.offset, 31 * 1024);
    expect(hex(slot.subarray(0, 30 * 1024))).toBe(hex(B.subarray(0, 30 * 1024)));
    // Erase block 30 was never erased: it still holds A's bytes.
    expect(hex(slot.subarray(30 * 1024))).toBe(hex(A.subarray(30 * 1024, 31 * 1024)));
    const b = await bootInPlace(d.flash, d.layout);
    expect(b).toMatchObject({ state: 'recovery', reason: 'overwrite', staged: true, phase: 'fetching', nextBlock: 30 });
    // Still broken: the loader fails again at block 30 and the device stays in recovery.
    const o = opts(d);
    const again = await powerOnInPlace(o.opts).finally(o.close);
    expect(again.boot.state).toBe('recovery');
    expect(again.recoveries[0]).toMatchObject({ result: 'failed', block: 30, blocksResumed: 30 });
    server.put(path, B);
    const served = server.servedOf(path);
    const o2 = opts(d);
    const p = await powerOnInPlace(o2.opts).finally(o2.close);
    expect(p.boot.state === 'run' && hex(p.boot.image.digest)).toBe(hex(sha256(B)));
    expect(p.recoveries).toMatchObject([{ result: 'installed', blocksResumed: 30 }]);
    expect(server.servedOf(path) - served).toBe(30);
    expect(p.installedSequence).toBe(2);
  });

  it('a slot broken without an update in progress: the recovery loader fetches the manifest and installs it in place', async () => {
    const d = await board();
    serveRelease(server, release(B, 2));
    await d.flash.erase(d.layout.primary.offset + 5 * EBS, EBS);
    expect(await bootInPlace(d.flash, d.layout)).toMatchObject({ state: 'recovery', reason: 'image-invalid', staged: false });
    const o = opts(d);
    const st = await runRecoveryLoader(o.opts).finally(o.close);
    expect(st).toMatchObject({ result: 'installed', installedSequence: 2 });
    expect(await slotHolds(d, B)).toBe(true);
  });
});
