/**
 * A loopback capture of `coapfw device update` over plain coap://: every
 * datagram the server receives from and sends to the simulated device is
 * recorded, and none names the device (its --device-id, its default id
 * sim-<file>, the flash file's name), though its reports reach the tracker.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { createEnvelope } from '../../src/suit/create.js';
import { tapTransport } from '../../src/testing/tap.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { captureIo } from '../helpers/cli-io.js';
import { CLASS, hex, image, KEY, VENDOR } from '../device/update-helpers.js';

/** Every datagram the server sent or received, in order. */
const datagrams: Uint8Array[] = [];
const record = (data: Uint8Array): void => void datagrams.push(Uint8Array.from(data));

const IMG = image(12_000, 9);
const SERIAL = 'SN-0042-QX7';
let dir: string;
let server: FileServer;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-privacy-'));
  await writeFile(join(dir, 'app.bin'), IMG);
  const digest = sha256(IMG);
  await writeFile(join(dir, 'app.suit'), createEnvelope({ sequence: 2, vendorId: VENDOR, classId: CLASS, uri: `/fw/sha256/${hex(digest)}`, digest, size: IMG.length }, [KEY]));
  await writeFile(join(dir, 'evil.suit'), createEnvelope({ sequence: 3, vendorId: VENDOR, classId: new Uint8Array(16), uri: `/fw/sha256/${hex(digest)}`, digest, size: IMG.length }, [KEY]));
  await writeFile(join(dir, 'pub.hex'), hex(KEY.publicKey.bytes));
  const transport = tapTransport(await UdpTransport.bind({ host: '127.0.0.1', port: 0 }), { received: record, sent: record });
  server = await startFileServer({ dir, transport, refreshMs: 0 });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function device(manifest: string, ...extra: string[]) {
  const c = captureIo();
  const base = `coap://127.0.0.1:${server.address().port}/files`;
  const code = await main(['device', 'update', `${base}/${manifest}`, '--flash', join(dir, 'board-SN0042.flash'), '--trust', join(dir, 'pub.hex'), '--vendor-id', hex(VENDOR), '--class-id', hex(CLASS), ...extra], c.io);
  return { code, json: JSON.parse(c.out().trim().split('\n').at(-1)!) as Record<string, unknown> };
}

describe('plain-CoAP capture of a simulated device', () => {
  it('names the device nowhere: not its --device-id, its default id, nor its flash file', { timeout: 30_000 }, async () => {
    expect(await device('app.suit', '--device-id', SERIAL)).toMatchObject({ code: 0, json: { result: 'installed', boot: 'confirmed' } });
    expect((await device('evil.suit')).json).toMatchObject({ result: 'rejected', error: 'CLASS_MISMATCH' });
    expect(datagrams.length).toBeGreaterThan(20);
    for (const d of datagrams) {
      const text = Buffer.from(d);
      for (const id of [SERIAL, 'SN0042', 'sim-', 'board-', '"message"']) expect(text.includes(id), `a datagram carries ${id}`).toBe(false);
    }
    // The reports arrived, each run under its own pseudonym.
    const reports = server.status.list();
    expect(reports.map((r) => r.device)).toEqual([expect.stringMatching(/^anon-[0-9a-f]{16}$/), expect.stringMatching(/^anon-[0-9a-f]{16}$/)]);
    expect(reports.map((r) => r.report.result)).toEqual(['confirmed', 'rejected']);
  });
});
