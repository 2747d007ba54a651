/**
 * A device update with Q-Block2 (RFC 9177) from the real file server
 * (`startFileServer`, as `coapfw serve` runs it) over UDP loopback: clean,
 * through the impaired transport at 10 % and 20 % loss each way, and the
 * fallback to Block2 against a server without Q-Block2. Requests are
 * counted at the device's transport: Block2 costs one per block, Q-Block2
 * far fewer.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClient } from '../../src/client/open.js';
import { provisionDevice } from '../../src/device/device.js';
import { updateDevice } from '../../src/device/device-update.js';
import type { UpdateEvent } from '../../src/device/states.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { tapTransport } from '../../src/testing/tap.js';
import { ImpairedTransport } from '../../src/transport/impaired.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { CLASS, hex, image, isImageRequest, TRUST, VENDOR, releaseDir } from './update-helpers.js';

const A = image(10_000, 1);
const IMG = image(64 * 1024 - 300, 11); // 64 blocks of 1 KiB, the last one short
const BLOCKS = 64;

let dir: string;
const servers: FileServer[] = [];

beforeAll(async () => {
  dir = await releaseDir('coapfw-qb2-device-', IMG, 2);
});
afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  await rm(dir, { recursive: true, force: true });
});

/** A file server on loopback losing `loss` of what it sends; `qblock2` false: Block2 only. */
async function serve(loss: number, qblock2 = true): Promise<string> {
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  const transport = loss > 0 ? new ImpairedTransport(udp, { loss, seed: 21 }) : udp;
  const server = await startFileServer({ dir: join(dir, 'srv'), transport, refreshMs: 0, ...(qblock2 ? {} : { qblock2: false }) });
  servers.push(server);
  return `coap://127.0.0.1:${server.address().port}/files/app.suit`;
}

/** Power on, update, reboot a fresh device from `uri`, its own sends lost at `loss`; counts its image requests. */
async function updateFrom(uri: string, loss: number, extra: { qblock2?: boolean } = {}) {
  const flash = new MemoryFlash({ size: 176 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 72 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  let imageRequests = 0;
  const client = await openClient(uri, {
    params: { ackTimeoutMs: 300 },
    // Counted before the loss: every request the device tried to send.
    wrapTransport: (t) => tapTransport(loss > 0 ? new ImpairedTransport(t, { loss, seed: 22 }) : t, { sent: (d) => void (isImageRequest(d) && imageRequests++) }),
  });
  const events: UpdateEvent[] = [];
  try {
    const r = await updateDevice({
      flash,
      layout,
      request: client.request,
      openStream: (l) => client.openStream(l),
      runtime: client.runtime,
      manifestUri: uri,
      trust: TRUST,
      vendorId: VENDOR,
      classId: CLASS,
      ...extra,
      onEvent: (e) => events.push(e),
    });
    return { ...r, flash, layout, events, imageRequests, modes: events.filter((e) => e.type === 'transfer') };
  } finally {
    await client.close();
  }
}

type Updated = Awaited<ReturnType<typeof updateFrom>>;

async function expectConfirmed(r: Updated): Promise<void> {
  expect(r.status).toMatchObject({ result: 'installed', installedSequence: 2, blocksFetched: BLOCKS, blocksResumed: 0 });
  expect(r.after?.outcome).toBe('confirmed');
  expect(hex(r.after!.boot.image.digest)).toBe(hex(sha256(IMG)));
  expect(hex(await hashArea(r.flash, r.layout.primary, IMG.length))).toBe(hex(sha256(IMG)));
  expect((await Journal.open(r.flash, r.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
  // Blocks reach flash in image order, each once, whatever order they came in.
  const offsets = r.events.flatMap((e) => (e.type === 'block' ? [e.offset] : []));
  expect(offsets).toEqual(Array.from({ length: BLOCKS }, (_, i) => i * 1024));
}

describe('device update with Q-Block2 from the file server', () => {
  it('clean loopback: confirmed with the right image, by Q-Block2, in far fewer requests than blocks', async () => {
    const r = await updateFrom(await serve(0), 0);
    await expectConfirmed(r);
    expect(r.modes).toEqual([{ type: 'transfer', image: 0, mode: 'qblock2' }]);
    expect(r.imageRequests).toBeLessThan(BLOCKS / 4);
    // One erase block (4 blocks) per journal record, as with Block2.
    expect(r.events.filter((e) => e.type === 'journal').length).toBe(BLOCKS / 4 - 1);
  });

  for (const loss of [0.1, 0.2]) {
    it(`${loss * 100} % loss each way: confirmed with the right image, by Q-Block2, in fewer requests than blocks`, async () => {
      const r = await updateFrom(await serve(loss), loss);
      await expectConfirmed(r);
      expect(r.modes).toEqual([{ type: 'transfer', image: 0, mode: 'qblock2' }]);
      expect(r.imageRequests).toBeLessThan(BLOCKS);
    }, 60_000);
  }

  it('a server without Q-Block2: falls back to Block2 (one request per block) and installs', async () => {
    const r = await updateFrom(await serve(0, false), 0);
    await expectConfirmed(r);
    expect(r.modes).toEqual([{ type: 'transfer', image: 0, mode: 'block2' }]);
    expect(r.imageRequests).toBeGreaterThanOrEqual(BLOCKS);
  });

  it('qblock2: false keeps to Block2 against a server that does Q-Block2', async () => {
    const r = await updateFrom(await serve(0), 0, { qblock2: false });
    await expectConfirmed(r);
    expect(r.modes).toEqual([{ type: 'transfer', image: 0, mode: 'block2' }]);
    expect(r.imageRequests).toBe(BLOCKS);
  });
});
