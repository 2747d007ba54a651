/**
 * Anti-rollback fails closed: the installed sequence number lives in the
 * resume journal, so a journal area holding records this firmware cannot
 * read must refuse updates (JOURNAL_CORRUPT), while a fresh chip (empty
 * area) or a torn first record updates normally.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { boot, installFactoryImage, readBootState } from '../../src/device/boot.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import { Journal, RESUME_FORMAT_VERSION, encodeResumeRecord, idleResumeRecord } from '../../src/flash/journal.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { RecordLog } from '../../src/flash/record-log.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR } from './update-helpers.js';

const A = image(9000, 1);
const B = image(6000, 2);

let server: MemUpdateServer;
afterEach(async () => server?.close());

/** A chip with only a confirmed factory image: the journal area is untouched (erased). */
async function freshChip(): Promise<{ flash: MemoryFlash; layout: FlashLayout }> {
  const flash = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 28 * 1024 });
  await installFactoryImage(flash, layout, A);
  return { flash, layout };
}

async function update(dev: { flash: MemoryFlash; layout: FlashLayout }) {
  const runtime = new FakeRuntime();
  const c = server.client(runtime);
  try {
    return await runUpdate({ ...dev, request: c.request, manifestUri: MANIFEST_URI, runtime, trust: TRUST, vendorId: VENDOR, classId: CLASS });
  } finally {
    await c.close();
  }
}

/** Whatever the refused device does, the factory image is still the confirmed running image. */
async function expectFactoryImageRuns(dev: { flash: MemoryFlash; layout: FlashLayout }): Promise<void> {
  const state = await readBootState(dev.flash, dev.layout);
  expect(state).toMatchObject({ primaryMode: 'confirmed', swap: null });
  expect(hex(state!.components[0]!.primary!.digest)).toBe(hex(sha256(A)));
  const b = await boot(dev.flash, dev.layout);
  expect(b.mode).toBe('confirmed');
  expect(hex(b.image.digest)).toBe(hex(sha256(A)));
}

describe('anti-rollback with an unreadable journal', () => {
  it('a fresh chip (empty journal area) takes installed = 0 and updates', async () => {
    server = new MemUpdateServer();
    server.publish(B, 1);
    const dev = await freshChip();
    expect((await Journal.open(dev.flash, dev.layout)).latest()).toBeUndefined();
    const status = await update(dev);
    expect(status).toMatchObject({ result: 'installed', installedSequence: 0, candidateSequence: 1 });
    const p = await powerOn(dev.flash, dev.layout);
    expect(p).toMatchObject({ outcome: 'confirmed', installedSequence: 1 });
    expect(hex(p.boot.image.digest)).toBe(hex(sha256(B)));
  });

  it('a torn first journal record (no CRC-valid frame) still counts as fresh: the device updates', async () => {
    server = new MemUpdateServer();
    server.publish(B, 1);
    const dev = await freshChip();
    const j = await Journal.open(dev.flash, dev.layout);
    dev.flash.cutAfter(0, { tornBytes: 40 });
    await expect(j.append(idleResumeRecord(9))).rejects.toMatchObject({ code: 'POWER_CUT' });
    dev.flash.powerOn();
    expect((await update(dev)).result).toBe('installed');
  });

  const foreign: [string, (flash: MemoryFlash, layout: FlashLayout) => Promise<void>][] = [
    ['a record of another payload size', async (flash, layout) => {
      const log = await RecordLog.open(flash, layout.journal, { kind: 1, payloadSize: 100 });
      await log.append(new Uint8Array(100).fill(0x07));
    }],
    ['a current-size record of another format version', async (flash, layout) => {
      const log = await RecordLog.open(flash, layout.journal, { kind: 1, payloadSize: 68 });
      const p = encodeResumeRecord(idleResumeRecord(50));
      p[0] = RESUME_FORMAT_VERSION + 1;
      await log.append(p);
    }],
  ];
  for (const [what, write] of foreign) {
    it(`a journal holding only ${what} refuses (JOURNAL_CORRUPT) an older signed manifest; the running image stays`, async () => {
      server = new MemUpdateServer();
      const path = server.publish(B, 1);
      const dev = await freshChip();
      await write(dev.flash, dev.layout);
      const st = await update(dev);
      expect(st).toMatchObject({ result: 'failed', error: 'JOURNAL_CORRUPT', message: expect.stringMatching(/installed sequence number is unknown/) });
      expect(st.installedSequence).toBeUndefined();
      // Refused before any network traffic or flash write for the update.
      expect(server.servedOf('manifest.suit')).toBe(0);
      expect(server.servedOf(path)).toBe(0);
      await expectFactoryImageRuns(dev);
      // Re-provisioning resets the journal; updates work again, with anti-rollback from the provisioned sequence.
      await provisionDevice(dev.flash, dev.layout, A, 1);
      expect((await update(dev)).result).toBe('up-to-date');
      server.publish(B, 2);
      expect((await update(dev)).result).toBe('installed');
    });
  }
});
