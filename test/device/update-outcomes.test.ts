/**
 * Every outcome is reported (issue 8, item 6): the failures that used to
 * escape `runUpdate` (giving up after repeated ETag changes, errors of the
 * power-on before an update and of the reboot after it, a device that cannot
 * update, an error that is not a CoapfwError) now end in a typed status that
 * was handed to onStatus and POSTed to the status tracker, with the journal
 * left consistent (no `fetching` record for an image version that is gone).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Requester } from '../../src/core/request.js';
import { OptionNumber } from '../../src/codec/numbers.js';
import { updateDevice } from '../../src/device/device-update.js';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import type { UpdateStatus } from '../../src/device/report.js';
import { runUpdate } from '../../src/device/updater.js';
import { CoapfwError } from '../../src/errors.js';
import type { FlashBackend } from '../../src/flash/backend.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { CLASS, hex, image, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR } from './update-helpers.js';

const A = image(10_000, 1);
const B = image(24 * 1024 - 100, 2);
const STATUS_PATH = '/status/dev-7';

/** A flash that fails every operation with `failure` while it is set. */
class FailingFlash implements FlashBackend {
  failure: Error | undefined;
  constructor(private readonly inner: MemoryFlash) {}
  get size(): number {
    return this.inner.size;
  }
  get eraseBlockSize(): number {
    return this.inner.eraseBlockSize;
  }
  get writeAlignment(): number {
    return this.inner.writeAlignment;
  }
  private check(): void {
    if (this.failure) throw this.failure;
  }
  async read(o: number, n: number): Promise<Uint8Array> {
    this.check();
    return this.inner.read(o, n);
  }
  async write(o: number, d: Uint8Array): Promise<void> {
    this.check();
    return this.inner.write(o, d);
  }
  async erase(o: number, n: number): Promise<void> {
    this.check();
    return this.inner.erase(o, n);
  }
}

async function device(): Promise<{ flash: FailingFlash; mem: MemoryFlash; layout: FlashLayout }> {
  const mem = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(mem, { slotSize: 28 * 1024 });
  await provisionDevice(mem, layout, A, 1);
  return { flash: new FailingFlash(mem), mem, layout };
}

let server: MemUpdateServer;
afterEach(async () => server?.close());

function options(dev: { flash: FlashBackend; layout: FlashLayout }, request: Requester, seen: UpdateStatus[]) {
  return {
    flash: dev.flash,
    layout: dev.layout,
    request,
    manifestUri: MANIFEST_URI,
    runtime: new FakeRuntime(),
    trust: TRUST,
    vendorId: VENDOR,
    classId: CLASS,
    statusPath: STATUS_PATH,
    onStatus: (s: UpdateStatus) => void seen.push(s),
  };
}

/** The failure paths exercised; each test fails (an exception, no status, no POST) before it is added. */
const tried: string[] = [];
const PATHS = 6;
afterAll(() => console.log(JSON.stringify({ test: 'update-outcomes', pathsTried: PATHS, unreported: PATHS - tried.length, reported: tried })));

describe('every update outcome is reported', () => {
  it('giving up after repeated ETag changes: failed UPDATE_FAILED, POSTed, the journal idle (not fetching)', async () => {
    server = new MemUpdateServer();
    const path = server.publish(B, 2);
    let versions = 0;
    // The image changes under every download, at block 2: no download can finish.
    server.beforeServe = (p, num) => {
      if (p === path && num === 2) server.put(path, image(B.length, 100 + versions++));
    };
    const dev = await device();
    const c = server.client(new FakeRuntime());
    const seen: UpdateStatus[] = [];
    const status = await runUpdate(options(dev, c.request, seen)).finally(() => c.close());
    expect(status).toMatchObject({ result: 'failed', error: 'UPDATE_FAILED', restarts: 3, installedSequence: 1, message: expect.stringMatching(/keeps changing/) });
    expect(seen).toEqual([status]);
    // Over plain CoAP the report travels without its free-text message (device/privacy.ts).
    expect(server.reports).toEqual([{ device: 'dev-7', report: JSON.parse(JSON.stringify({ ...status, message: undefined })) }]);
    expect((await Journal.open(dev.mem, dev.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 1 });
    expect((await powerOn(dev.mem, dev.layout)).boot.mode).toBe('confirmed');
    tried.push('etag-churn');
  });

  it('an error that is not a CoapfwError (a broken transport) is a failed status, not an exception', async () => {
    server = new MemUpdateServer();
    server.publish(B, 2);
    const dev = await device();
    const c = server.client(new FakeRuntime());
    const first = (spec: Parameters<Requester>[0]): string => new TextDecoder().decode(spec.options?.find((x) => x.number === OptionNumber.URI_PATH)?.value);
    const request: Requester = (spec, o) => (first(spec) === 'fw' ? Promise.reject(new TypeError('socket went away')) : c.request(spec, o));
    const seen: UpdateStatus[] = [];
    const status = await runUpdate(options(dev, request, seen)).finally(() => c.close());
    expect(status).toMatchObject({ result: 'failed', error: 'TypeError', message: 'socket went away', installedSequence: 1 });
    expect(server.reports.map((r) => r.report.result)).toEqual(['failed']);
    tried.push('foreign-error');
  });

  it('a device that cannot update (test image unconfirmed; unreadable journal) reports failed before fetching anything', async () => {
    server = new MemUpdateServer();
    const path = server.publish(B, 2);
    const dev = await device();
    const c = server.client(new FakeRuntime());
    const seen: UpdateStatus[] = [];
    expect((await runUpdate(options(dev, c.request, seen))).result).toBe('installed');
    await powerOn(dev.mem, dev.layout, { selfTest: () => false }); // the test image runs, unconfirmed
    const served = server.servedOf('manifest.suit');
    const st = await runUpdate(options(dev, c.request, seen));
    expect(st).toMatchObject({ result: 'failed', error: 'BOOT_STATE', installedSequence: 1, blocksFetched: 0 });
    expect(server.servedOf('manifest.suit')).toBe(served);
    // An unreadable journal: the installed sequence is unknown, and said to be.
    await powerOn(dev.mem, dev.layout); // reverts the unconfirmed image
    await dev.mem.erase(dev.layout.journal.offset, dev.layout.journal.size);
    const { RecordLog } = await import('../../src/flash/record-log.js');
    await (await RecordLog.open(dev.mem, dev.layout.journal, { kind: 1, payloadSize: 40 })).append(new Uint8Array(40));
    const corrupt = await runUpdate(options(dev, c.request, seen));
    await c.close();
    expect(corrupt).toMatchObject({ result: 'failed', error: 'JOURNAL_CORRUPT' });
    expect(corrupt.installedSequence).toBeUndefined();
    expect(server.servedOf(path)).toBe(24);
    expect(server.reports.map((r) => `${r.report.result}:${String(r.report.error ?? '')}`)).toEqual(['installed:', 'failed:BOOT_STATE', 'failed:JOURNAL_CORRUPT']);
    tried.push('boot-state', 'journal-corrupt');
  });

  it('a power-on that fails before the update (no bootable image) is a failed status, POSTed', async () => {
    server = new MemUpdateServer();
    server.publish(B, 2);
    const dev = await device();
    await dev.mem.erase(dev.layout.primary.offset, dev.mem.eraseBlockSize); // the running image is damaged
    const c = server.client(new FakeRuntime());
    const seen: UpdateStatus[] = [];
    const r = await updateDevice(options(dev, c.request, seen)).finally(() => c.close());
    expect(r.status).toMatchObject({ result: 'failed', error: 'NO_BOOTABLE_IMAGE', installedSequence: 1 });
    expect(r.before).toBeUndefined();
    expect(seen).toEqual([r.status]);
    expect(server.reports.map((x) => x.report)).toEqual([JSON.parse(JSON.stringify({ ...r.status, message: undefined }))]);
    expect(server.servedOf('manifest.suit')).toBe(0);
    tried.push('power-on');
  });

  it('a reboot into the installed image that fails is a failed status, POSTed after the installed one; the next power-on finishes it', async () => {
    server = new MemUpdateServer();
    server.publish(B, 2);
    const dev = await device();
    const c = server.client(new FakeRuntime());
    const seen: UpdateStatus[] = [];
    const opts = options(dev, c.request, seen);
    const r = await updateDevice({
      ...opts,
      onStatus: (s) => {
        seen.push(s);
        if (s.result === 'installed') dev.flash.failure = new CoapfwError('IO_ERROR', 'flash controller timeout');
      },
    }).finally(() => c.close());
    expect(r.status).toMatchObject({ result: 'failed', error: 'IO_ERROR', blocksFetched: 24, candidateSequence: 2 });
    expect(r.after).toBeUndefined();
    expect(server.reports.map((x) => x.report.result)).toEqual(['installed', 'failed']);
    dev.flash.failure = undefined;
    const p = await powerOn(dev.mem, dev.layout);
    expect([p.outcome, p.installedSequence, hex(p.boot.image.digest)]).toEqual(['confirmed', 2, hex(sha256(B))]);
    tried.push('reboot');
  });
});
