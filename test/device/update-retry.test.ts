/**
 * Failures retry with bounded exponential back-off and jitter, on the
 * injected Runtime only: a FakeRuntime whose clock moves only when the test
 * advances it drives every retransmission and back-off here.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import type { UpdateEvent } from '../../src/device/states.js';
import { runUpdate } from '../../src/device/updater.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { flush } from '../../src/testing/mem-transport.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, SERVER, TRUST, VENDOR } from './update-helpers.js';

const A = image(6000, 1);
const B = image(16 * 1024, 2);

let server: MemUpdateServer;
afterEach(async () => server?.close());

/** Run `p` to completion, moving the fake clock while it waits. */
async function drive<T>(rt: FakeRuntime, p: Promise<T>): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; !done && i < 100_000; i++) {
    await flush();
    if (!done) rt.advance(50);
  }
  return p;
}

async function setup(outageAt: number) {
  server = new MemUpdateServer();
  const path = server.publish(B, 2);
  let outage = false;
  let started = false;
  server.beforeServe = (p, num) => {
    if (p === path && num === outageAt && !started) outage = started = true;
  };
  // During the outage every datagram from the server is lost.
  server.net.filter = (from) => !(outage && from.address === SERVER.address);
  const flash = new MemoryFlash({ size: 64 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 20 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  const rt = new FakeRuntime(7);
  const c = server.client(rt, { ackTimeoutMs: 200, maxRetransmit: 2 });
  const events: UpdateEvent[] = [];
  const run = (onEvent?: (e: UpdateEvent) => void) =>
    drive(
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
        blockRetry: { attempts: 2, baseMs: 100, maxMs: 1000 },
        retry: { attempts: 3, baseMs: 1000, maxMs: 8000 },
        onEvent: (e) => {
          events.push(e);
          onEvent?.(e);
        },
      }).finally(() => c.close()),
    );
  return { flash, layout, rt, path, events, run, end: () => (outage = false) };
}

describe('update retries', () => {
  it('after an outage mid-download, backs off, checks again and resumes from the journal', async () => {
    const s = await setup(10);
    const t0 = s.rt.now();
    const status = await s.run((e) => {
      if (e.type === 'retry') s.end(); // the network comes back while the device waits
    });
    expect(status).toMatchObject({ result: 'installed', blocksResumed: 8, restarts: 0 });
    const retries = s.events.filter((e) => e.type === 'retry');
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ attempt: 1, error: 'TIMEOUT' });
    const delay = (retries[0] as { delayMs: number }).delayMs;
    expect(delay).toBeGreaterThanOrEqual(0);
    expect(delay).toBeLessThanOrEqual(1000); // full jitter under the first ceiling
    expect(s.rt.now() - t0).toBeGreaterThan(0); // only the fake clock moved
    const states = s.events.filter((e) => e.type === 'state').map((e) => (e as { state: string }).state);
    expect(states).toEqual(['check', 'verify', 'download', 'check', 'verify', 'download', 'verify-image', 'install', 'report']);
    const p = await powerOn(s.flash, s.layout);
    expect(hex(p.boot.image.digest)).toBe(hex(sha256(B)));
  });

  it('gives up after the bounded number of attempts with exponentially growing ceilings; the running image stays', async () => {
    const s = await setup(3);
    const status = await s.run();
    expect(status).toMatchObject({ result: 'failed', error: 'TIMEOUT' });
    const retries = s.events.filter((e) => e.type === 'retry') as { attempt: number; delayMs: number }[];
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
    expect(retries[0]!.delayMs).toBeLessThanOrEqual(1000);
    expect(retries[1]!.delayMs).toBeLessThanOrEqual(2000);
    const p = await powerOn(s.flash, s.layout);
    expect(hex(p.boot.image.digest)).toBe(hex(sha256(A)));
    expect(p.boot.mode).toBe('confirmed');
  });
});
