/**
 * A device update survives a server that says "try again later" (issue 8,
 * item 2): 5.03 + Max-Age is retried within the per-block policy (the device
 * fetches through fetchBlocks) and, when a block's attempts run out, by the
 * update's own retry, never sooner than the Max-Age the server asked for.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ByteSource } from '../../src/blockwise/source.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import type { UpdateEvent } from '../../src/device/states.js';
import { runUpdate } from '../../src/device/updater.js';
import { CoapfwError } from '../../src/errors.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { drive } from '../helpers/drive.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR } from './update-helpers.js';

const A = image(6000, 3);
const B = image(16 * 1024, 4);

let server: MemUpdateServer;
afterEach(async () => server?.close());


/**
 * The image at `path` answers 5.03 with Max-Age `maxAge` (the router maps the
 * thrown LIMIT_EXCEEDED) to the reads of block `busyBlock` whose 1-based
 * number is in `busyReads`; records the clock at every read of that block.
 */
function busyImage(src: ByteSource, rt: FakeRuntime, busyBlock: number, busyReads: ReadonlySet<number>, maxAge: number) {
  const times: number[] = [];
  const wrapped: ByteSource = {
    size: src.size,
    etag: src.etag,
    contentFormat: src.contentFormat,
    read: (offset, length) => {
      if (offset === busyBlock * 1024) {
        times.push(rt.now());
        if (busyReads.has(times.length)) throw new CoapfwError('LIMIT_EXCEEDED', 'busy', { maxAge });
      }
      return src.read(offset, length);
    },
  };
  return { wrapped, times };
}

async function setup(busyReads: ReadonlySet<number>, maxAge: number) {
  server = new MemUpdateServer();
  const path = server.publish(B, 2);
  const rt = new FakeRuntime(5);
  const busy = busyImage(server.sources.get(path)!, rt, 4, busyReads, maxAge);
  server.sources.set(path, busy.wrapped);
  const flash = new MemoryFlash({ size: 64 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 20 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  const c = server.client(rt);
  const events: UpdateEvent[] = [];
  const status = await drive(
    rt,
    runUpdate({
      flash,
      layout,
      request: c.request,
      manifestUri: MANIFEST_URI,
      runtime: rt,
      trust: TRUST,
      vendorId: VENDOR,
      classId: CLASS,
      blockRetry: { attempts: 3, baseMs: 100, maxMs: 1000 },
      retry: { attempts: 3, baseMs: 100, maxMs: 1000 },
      onEvent: (e) => void events.push(e),
    }).finally(() => c.close()),
  );
  return { status, times: busy.times, events, flash, layout };
}

describe('device update and 5.03 + Max-Age', () => {
  it('retries the block after Max-Age within the per-block policy and installs', async () => {
    const s = await setup(new Set([1, 2]), 4);
    expect(s.status).toMatchObject({ result: 'installed' });
    expect(s.times).toHaveLength(3);
    expect(s.times[1]! - s.times[0]!).toBeGreaterThanOrEqual(4000);
    expect(s.times[2]! - s.times[1]!).toBeGreaterThanOrEqual(4000);
    expect(s.events.filter((e) => e.type === 'retry')).toHaveLength(0);
    expect(hex((await powerOn(s.flash, s.layout)).boot.image.digest)).toBe(hex(sha256(B)));
  });

  it('when the block attempts run out, the update retries after Max-Age and resumes', async () => {
    const s = await setup(new Set([1, 2, 3]), 6);
    expect(s.status).toMatchObject({ result: 'installed' });
    const retries = s.events.filter((e) => e.type === 'retry') as { delayMs: number; error: string }[];
    expect(retries).toHaveLength(1);
    expect(retries[0]!.error).toBe('RESPONSE_CODE');
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(6000);
    expect(s.times).toHaveLength(4);
    expect(s.times[3]! - s.times[2]!).toBeGreaterThanOrEqual(6000);
  });
});
