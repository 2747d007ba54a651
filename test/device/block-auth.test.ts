/**
 * Verify-before-write (issue 13): every block is checked against the signed
 * block digests before it is handed to the slot writer, so a server that
 * flips one byte of block k makes the device stop at block k with nothing of
 * it on flash, report why, and keep its running image; a tampered digest list
 * is refused at the page (or top list) that was tampered with.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import { isErased } from '../../src/flash/backend.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { blobPath, flipped, release, serveRelease, updateOptions } from './inplace-helpers.js';
import { hex, image, MemUpdateServer } from './update-helpers.js';

const A = image(20_000, 1);
const B = image(24 * 1024 - 200, 2);
const EBS = 4096;

let server: MemUpdateServer;
afterEach(async () => server?.close());

async function device(maxSzx = 6) {
  server = new MemUpdateServer(maxSzx);
  const flash = new MemoryFlash({ size: 64 * 1024 + 5 * EBS, eraseBlockSize: EBS });
  const layout = createLayout(flash, { slotSize: 32 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  return { flash, layout, runtime: new FakeRuntime(7) };
}

async function update(d: Awaited<ReturnType<typeof device>>) {
  const { opts, close } = updateOptions(server, d.flash, d.layout, d.runtime);
  return runUpdate(opts).finally(close);
}

describe('verify-before-write on an A/B device', () => {
  for (const k of [9, 8]) {
    it(`a server flipping one byte of block ${k} (${k % 4 === 0 ? 'the first block of an erase block' : 'inside an erase block'}): the device stops at block ${k}, writes nothing of it, reports it, keeps A`, async () => {
      const d = await device();
      const r = release(B, 2);
      serveRelease(server, r);
      const path = blobPath(r, 'image');
      server.put(path, flipped(B, k * 1024 + 100));
      // Leftovers in the secondary: the erase block holding block k must not even be erased when k starts it.
      const sec = d.layout.secondary;
      await d.flash.erase(sec.offset, sec.size);
      await d.flash.write(sec.offset + 8 * 1024, new Uint8Array(EBS).fill(0x5a));
      const status = await update(d);
      expect(status).toMatchObject({ result: 'rejected', error: 'DIGEST_MISMATCH', block: k });
      expect(status.message).toContain(`block ${k}`);
      expect(server.reports.at(-1)!.report).toMatchObject({ result: 'rejected', error: 'DIGEST_MISMATCH', block: k });
      // It asked for no block after k.
      expect(server.servedOf(path)).toBe(k + 1);
      const slot = await d.flash.read(sec.offset, sec.size);
      // Blocks before k are the verified bytes of B; block k holds nothing of the stream.
      expect(hex(slot.subarray(0, k * 1024))).toBe(hex(B.subarray(0, k * 1024)));
      const blockK = slot.subarray(k * 1024, (k + 1) * 1024);
      if (k % 4 === 0) expect(blockK.every((x) => x === 0x5a)).toBe(true); // not erased, not written
      else expect(isErased(blockK)).toBe(true); // erased with its erase block, never programmed
      const p = await powerOn(d.flash, d.layout);
      expect(hex(p.boot.image.digest)).toBe(hex(sha256(A)));
      expect(p.boot.mode).toBe('confirmed');
      expect(p.installedSequence).toBe(1);
    });
  }

  it('the verified progress stays: once the server sends the right bytes, the update resumes from the journal and installs', async () => {
    const d = await device();
    const r = release(B, 2);
    serveRelease(server, r);
    const path = blobPath(r, 'image');
    // An on-path attacker: the payload altered, the server's ETag (a SHA-256 prefix of the real image) as it was.
    server.put(path, flipped(B, 13 * 1024), sha256(B).slice(0, 8));
    expect(await update(d)).toMatchObject({ result: 'rejected', block: 13 });
    expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'fetching', nextBlock: 12 });
    server.put(path, B);
    const before = server.servedOf(path);
    const status = await update(d);
    expect(status).toMatchObject({ result: 'installed', blocksResumed: 12 });
    expect(server.servedOf(path) - before).toBe(24 - 12);
    const p = await powerOn(d.flash, d.layout);
    expect([hex(p.boot.image.digest), p.outcome]).toEqual([hex(sha256(B)), 'confirmed']);
  });

  it('a tampered digest page is refused at that page, before any block it covers is written', async () => {
    // 256-byte digest blocks: a page of 8 leaves covers 2 KiB of image, so the image has 12 pages.
    const d = await device();
    const r = release(B, 2, { blockSize: 256 });
    serveRelease(server, r);
    const dpath = blobPath(r, 'image-digests');
    const digests = r.blobs.find((b) => b.role === 'image-digests')!.bytes;
    server.put(dpath, flipped(digests, 3 * 256 + 5)); // page 3: blocks 24..31 = bytes 6144..8191
    const status = await update(d);
    expect(status).toMatchObject({ result: 'rejected', error: 'DIGEST_MISMATCH', block: 3 });
    expect(status.message).toContain('page 3');
    const slot = await d.flash.read(d.layout.secondary.offset, 12 * 1024);
    expect(hex(slot.subarray(0, 6144))).toBe(hex(B.subarray(0, 6144)));
    expect(isErased(slot.subarray(6144, 8192))).toBe(true);
  });

  it('a tampered top list is refused before anything is written', async () => {
    const d = await device();
    const r = release(B, 2);
    serveRelease(server, r);
    const digests = r.blobs.find((b) => b.role === 'image-digests')!.bytes;
    server.put(blobPath(r, 'image-digests'), flipped(digests, digests.length - 1));
    const writes = d.flash.stats.writes;
    const status = await update(d);
    expect(status).toMatchObject({ result: 'rejected', error: 'DIGEST_MISMATCH' });
    expect(status.message).toContain('top list');
    expect(server.servedOf(blobPath(r, 'image'))).toBe(0);
    // Only journal records (the clean start and the rejection), nothing in the slot.
    const slot = await d.flash.read(d.layout.secondary.offset, d.layout.secondary.size);
    expect(isErased(slot)).toBe(true);
    expect(d.flash.stats.writes - writes).toBeLessThanOrEqual(2);
  });

  it('a server that negotiates smaller blocks (256 bytes) than the 1 KiB digests: blocks are assembled, checked, installed', async () => {
    const d = await device(4);
    const r = release(B, 2);
    serveRelease(server, r);
    const status = await update(d);
    expect(status).toMatchObject({ result: 'installed' });
    expect(server.servedOf(blobPath(r, 'image'))).toBe(Math.ceil(B.length / 256));
    const p = await powerOn(d.flash, d.layout);
    expect(hex(p.boot.image.digest)).toBe(hex(sha256(B)));
  });
});
