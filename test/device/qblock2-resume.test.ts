/**
 * Q-Block2 (RFC 9177) device updates where the image changes under them or
 * the power goes: the same outcomes as with Block2 (update.test.ts). An ETag
 * change mid-transfer or while the device was off restarts the download from
 * block 0 (never stitched, §4.4); a resume with the same ETag asks only for
 * the blocks after the journal's; a server serving smaller blocks than asked
 * is followed across a power cut.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { powerOn } from '../../src/device/device.js';
import type { UpdateEvent, UpdateOptions } from '../../src/device/states.js';
import { runUpdate } from '../../src/device/updater.js';
import { isCoapfwError } from '../../src/errors.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR, provisionedDevice } from './update-helpers.js';

const A = image(10_000, 1);
const B = image(24 * 1024 - 100, 2);

const device = (): ReturnType<typeof provisionedDevice> => provisionedDevice(A);

let server: MemUpdateServer;
afterEach(async () => server?.close());

async function update(dev: Awaited<ReturnType<typeof device>>, extra: Partial<UpdateOptions> = {}) {
  const c = server.client(systemRuntime);
  try {
    return await runUpdate({ ...dev, request: c.request, openStream: c.openStream, manifestUri: MANIFEST_URI, runtime: systemRuntime, trust: TRUST, vendorId: VENDOR, classId: CLASS, ...extra });
  } finally {
    await c.close();
  }
}

/** An update cut by a power loss right after the `n`th block reached flash; then the next power-on. */
async function cutAt(dev: Awaited<ReturnType<typeof device>>, n: number): Promise<void> {
  let blocks = 0;
  await expect(update(dev, { onEvent: (e) => void (e.type === 'block' && ++blocks === n && dev.flash.cutAfter(0)) })).rejects.toSatisfy((e) => isCoapfwError(e, 'POWER_CUT'));
  dev.flash.powerOn();
  await powerOn(dev.flash, dev.layout);
}

const restarts = (events: UpdateEvent[]): string[] => events.flatMap((e) => (e.type === 'restart' ? [e.reason] : []));

describe('Q-Block2 device update: image changes and resumes', () => {
  it('the image replaced on the server mid-transfer: restarts from block 0, installs only the right bytes', async () => {
    server = new MemUpdateServer(6, true);
    const path = server.publish(B, 2);
    const other = image(B.length, 99);
    let swapped = false;
    const asked: number[] = [];
    server.beforeServe = (p, num) => {
      if (p !== path) return;
      asked.push(num);
      if (num >= 8 && !swapped) {
        swapped = true;
        server.put(path, other); // a different representation: new ETag
      } else if (num === 0 && swapped) {
        server.put(path, B); // and back to the right one for the restart
      }
    };
    const dev = await device();
    const events: UpdateEvent[] = [];
    const status = await update(dev, { onEvent: (e) => events.push(e) });
    expect(restarts(events)).toEqual(['the image resource changed (ETag)']);
    expect(status).toMatchObject({ result: 'installed', restarts: 1 });
    expect(status.blocksFetched).toBeGreaterThan(24); // what came before the change, then all of B
    expect(asked.filter((n) => n === 0)).toHaveLength(2); // the first probe, and the restart's
    expect(events.filter((e) => e.type === 'transfer')).toEqual([{ type: 'transfer', image: 0, mode: 'qblock2' }]);
    expect(hex(await hashArea(dev.flash, dev.layout.secondary, B.length))).toBe(hex(sha256(B)));
    expect(hex((await powerOn(dev.flash, dev.layout)).boot.image.digest)).toBe(hex(sha256(B)));
  });

  it('after a power cut with the same ETag: asks only from the journal’s block on', async () => {
    server = new MemUpdateServer(6, true);
    const path = server.publish(B, 2);
    const dev = await device();
    await cutAt(dev, 10);
    const rec = (await Journal.open(dev.flash, dev.layout)).latest();
    expect(rec).toMatchObject({ phase: 'fetching', nextBlock: 8 }); // two erase blocks of four were journalled
    const asked: number[] = [];
    server.beforeServe = (p, num) => void (p === path && asked.push(num));
    const sent = server.qblocksSent;
    const status = await update(dev);
    expect(status).toMatchObject({ result: 'installed', restarts: 0, blocksResumed: 8, blocksFetched: 16 });
    expect(asked[0]).toBe(8);
    expect(Math.min(...asked)).toBe(8);
    expect(server.qblocksSent - sent).toBe(16);
    expect(hex((await powerOn(dev.flash, dev.layout)).boot.image.digest)).toBe(hex(sha256(B)));
  });

  it('the ETag changed while the device was off, even for the same bytes: starts over', async () => {
    server = new MemUpdateServer(6, true);
    const path = server.publish(B, 2);
    const dev = await device();
    await cutAt(dev, 10);
    server.put(path, B, Uint8Array.of(1, 2, 3, 4));
    const events: UpdateEvent[] = [];
    const status = await update(dev, { onEvent: (e) => events.push(e) });
    expect(restarts(events)).toEqual(['the image resource changed (ETag)']);
    expect(status).toMatchObject({ result: 'installed', restarts: 1, blocksFetched: 24 }); // the refused block is not written
    expect(hex((await powerOn(dev.flash, dev.layout)).boot.image.digest)).toBe(hex(sha256(B)));
  });

  it('follows a server that serves smaller blocks, with an odd-sized image, across a power cut', async () => {
    server = new MemUpdateServer(4, true); // 256-byte blocks at most
    const odd = image(9999, 11);
    server.publish(odd, 2);
    const dev = await device();
    await cutAt(dev, 30);
    const rec = (await Journal.open(dev.flash, dev.layout)).latest();
    expect(rec).toMatchObject({ phase: 'fetching', szx: 4, nextBlock: 16 }); // one 4 KiB erase block of 256-byte blocks
    const status = await update(dev);
    expect(status).toMatchObject({ result: 'installed', blocksResumed: 16, blocksFetched: Math.ceil(9999 / 256) - 16 });
    expect(hex((await powerOn(dev.flash, dev.layout)).boot.image.digest)).toBe(hex(sha256(odd)));
  });

  it('maxAhead must be an integer >= 1: refused before anything is fetched', async () => {
    server = new MemUpdateServer(6, true);
    server.publish(B, 2);
    const dev = await device();
    for (const maxAhead of [0, 1.5]) {
      await expect(update(dev, { maxAhead })).rejects.toThrow(new RegExp(`runUpdate: maxAhead must be an integer 1\\.\\.\\d+, got ${maxAhead}`));
    }
    expect(server.requestsOf('manifest.suit')).toBe(0);
  });
});
