/**
 * Differential updates on an A/B device (issue 13): the delta streams from
 * the installed image in the primary slot into the secondary, each delta
 * block checked against the delta's digests before it is applied and each
 * output block against the new image's digests before it is written. A delta
 * for another source is refused before a byte is written, and the manifest's
 * full image is used instead.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createDelta } from '../../src/delta/encode.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import type { UpdateEvent } from '../../src/device/states.js';
import { runUpdate } from '../../src/device/updater.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout, type FlashArea } from '../../src/flash/layout.js';
import { MemoryFlash, type FlashOperation } from '../../src/flash/memory.js';
import { buildBlockDigests } from '../../src/suit/block-digests.js';
import { createEnvelope } from '../../src/suit/create.js';
import { toyExecutable } from '../delta/helpers.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { blobPath, flipped, release, serveRelease, updateOptions } from './inplace-helpers.js';
import { CLASS, hex, KEY, MemUpdateServer, VENDOR } from './update-helpers.js';

const EBS = 1024;
const A = toyExecutable(24_000, 5);
const B = toyExecutable(24_000, 5, 1, 9_000, 200);

let server: MemUpdateServer;
afterEach(async () => server?.close());

async function device(installed = A) {
  server = new MemUpdateServer();
  const ops: { op: FlashOperation; marker: number }[] = [];
  let marker = 0;
  const flash = new MemoryFlash({ size: 2 * 25 * 1024 + 5 * EBS, eraseBlockSize: EBS, onOperation: (op) => void ops.push({ op, marker }) });
  const layout = createLayout(flash, { slotSize: 25 * 1024 });
  await provisionDevice(flash, layout, installed, 1);
  const events: UpdateEvent[] = [];
  const runtime = new FakeRuntime(9);
  const run = async () => {
    const o = updateOptions(server, flash, layout, runtime, {
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'restart') marker++;
      },
    });
    return runUpdate(o.opts).finally(o.close);
  };
  return { flash, layout, ops, events, run };
}

const writesTo = (ops: readonly { op: FlashOperation; marker: number }[], a: FlashArea, marker: number): number =>
  ops.filter((o) => o.marker === marker && o.op.offset >= a.offset && o.op.offset < a.offset + a.size).length;

describe('delta on the device', () => {
  it('A to B from a delta: only delta blocks fetched, each checked, the secondary holds B, it boots and confirms', async () => {
    const d = await device();
    const r = release(B, 2, { deltaFrom: A, frameSize: 1024 });
    serveRelease(server, r);
    const delta = r.blobs.find((b) => b.role === 'delta')!.bytes;
    const status = await d.run();
    expect(status).toMatchObject({ result: 'installed' });
    expect(server.servedOf(blobPath(r, 'image'))).toBe(0);
    expect(server.servedOf(blobPath(r, 'delta'))).toBe(Math.ceil(delta.length / 1024));
    expect(delta.length).toBeLessThan(B.length / 4);
    const applied = d.events.find((e) => e.type === 'delta');
    expect(applied).toMatchObject({ type: 'delta', frames: Math.ceil(B.length / 1024) });
    const p = await powerOn(d.flash, d.layout);
    expect([hex(p.boot.image.digest), p.outcome]).toEqual([hex(sha256(B)), 'confirmed']);
  });

  it('installed image is not the source: the planner takes the full image, nothing of the delta is fetched', async () => {
    const d = await device(toyExecutable(24_000, 6));
    const r = release(B, 2, { deltaFrom: A, frameSize: 1024 });
    serveRelease(server, r);
    expect(await d.run()).toMatchObject({ result: 'installed' });
    expect(server.servedOf(blobPath(r, 'delta'))).toBe(0);
    expect(server.servedOf(blobPath(r, 'image'))).toBe(Math.ceil(B.length / 1024));
  });

  it('a delta made from another source than the manifest says: DELTA_SOURCE_MISMATCH before anything is written, then the full image', async () => {
    const d = await device();
    const other = toyExecutable(24_000, 7);
    const wrong = createDelta(other, B, { frameSize: 1024 });
    const dd = buildBlockDigests(wrong, { blockSize: 1024, uri: '/fw/sha256/wrong-digests' });
    const img = buildBlockDigests(B, { blockSize: 1024, uri: '/fw/sha256/b-digests' });
    server.put('fw/sha256/wrong', wrong);
    server.put('fw/sha256/wrong-digests', dd.resource);
    server.put('fw/sha256/b', B);
    server.put('fw/sha256/b-digests', img.resource);
    server.put(
      'manifest.suit',
      createEnvelope(
        {
          sequence: 2, vendorId: VENDOR, classId: CLASS, uri: '/fw/sha256/b', digest: sha256(B), size: B.length, blockDigests: img.info,
          delta: { uri: '/fw/sha256/wrong', digest: sha256(wrong), size: wrong.length, sourceDigest: sha256(A), sourceSize: A.length, frameSize: 1024, blockDigests: dd.info },
        },
        [KEY],
      ),
    );
    const status = await d.run();
    expect(status).toMatchObject({ result: 'installed' });
    const restart = d.events.find((e) => e.type === 'restart');
    expect(restart).toMatchObject({ reason: expect.stringContaining('DELTA_SOURCE_MISMATCH') });
    // Before the fallback: the journal's clean-start record, nothing in the secondary.
    expect(writesTo(d.ops, d.layout.secondary, 0)).toBe(0);
    expect(server.servedOf('fw/sha256/wrong')).toBe(1);
    expect(server.servedOf('fw/sha256/b')).toBe(Math.ceil(B.length / 1024));
    const p = await powerOn(d.flash, d.layout);
    expect(hex(p.boot.image.digest)).toBe(hex(sha256(B)));
  });

  it('the installed bytes are not what the boot record says: the source check on the bytes refuses the delta before anything is written', async () => {
    const d = await device();
    const r = release(B, 2, { deltaFrom: A, frameSize: 1024 });
    serveRelease(server, r);
    // One bit of the primary changes behind the boot record's back (the planner, reading the record, picks the delta).
    const at = d.layout.primary.offset + 4 * EBS;
    const block = await d.flash.read(at, EBS);
    await d.flash.erase(at, EBS);
    await d.flash.write(at, flipped(block, 17));
    const status = await d.run();
    expect(status).toMatchObject({ result: 'installed' });
    expect(d.events.find((e) => e.type === 'restart')).toMatchObject({ reason: expect.stringContaining('DELTA_SOURCE_MISMATCH') });
    expect(writesTo(d.ops, d.layout.secondary, 0)).toBe(0);
    expect(server.servedOf(blobPath(r, 'image'))).toBe(Math.ceil(B.length / 1024));
  });

  it('a flipped byte in delta block 1: refused before it is applied, the full image is fetched instead', async () => {
    const d = await device();
    const r = release(B, 2, { deltaFrom: A, frameSize: 1024 });
    serveRelease(server, r);
    const delta = r.blobs.find((b) => b.role === 'delta')!.bytes;
    server.put(blobPath(r, 'delta'), flipped(delta, 1024 + 3), sha256(delta).slice(0, 8));
    expect(await d.run()).toMatchObject({ result: 'installed' });
    expect(d.events.find((e) => e.type === 'restart')).toMatchObject({ reason: expect.stringMatching(/DIGEST_MISMATCH.*block 1/) });
    expect(server.servedOf(blobPath(r, 'delta'))).toBe(2);
    expect(server.servedOf(blobPath(r, 'image'))).toBe(Math.ceil(B.length / 1024));
    expect((await Journal.open(d.flash, d.layout)).latest()).toMatchObject({ phase: 'installing' });
  });
});
