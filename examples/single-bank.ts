/**
 * A board that cannot hold two images (96 KiB of flash, a 60 KiB image)
 * updates in place: the publisher builds a release with per-block digests
 * (coapfw/delta buildRelease) and serves every blob by content; the device
 * checks each block before it overwrites its image with it. Power fails in
 * the middle: the bootloader does not run the half-written image but the
 * recovery loader, which finishes the update from the journal.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCoapfwError } from 'coapfw';
import { openClient } from 'coapfw/client';
import { buildRelease } from 'coapfw/delta';
import { bootInPlace, powerOnInPlace, provisionDevice, runUpdate, type UpdateOptions } from 'coapfw/device';
import { createSingleBankLayout } from 'coapfw/flash';
import { startFileServer } from 'coapfw/server';
import { privateKeyFromSecret } from 'coapfw/suit';
import { MemoryFlash } from 'coapfw/testing';

const vendorId = Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex');
const classId = Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex');

// The publisher: image, its block digests and the envelope, each blob under any name (served by content).
const dir = await mkdtemp(join(tmpdir(), 'coapfw-single-bank-'));
const key = privateKeyFromSecret('ed25519', randomBytes(32));
const image = randomBytes(60 * 1024 - 100);
const release = buildRelease({ sequence: 2, vendorId, classId, image, blockSize: 1024 }, [key]);
for (const b of release.blobs) await writeFile(join(dir, `${b.hex}.${b.role}`), b.bytes);
await writeFile(join(dir, 'app.suit'), release.envelope);
const server = await startFileServer({ dir, host: '127.0.0.1', port: 0 });
const manifestUri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;

// The device: one 60 KiB slot and a recovery area on 96 KiB of 1 KiB erase blocks.
const flash = new MemoryFlash({ size: 96 * 1024, eraseBlockSize: 1024 });
const layout = createSingleBankLayout(flash, { slotSize: 60 * 1024 });
await provisionDevice(flash, layout, randomBytes(50 * 1024), 1);
const client = await openClient(manifestUri);
const opts: UpdateOptions = { flash, layout, request: client.request, runtime: client.runtime, manifestUri, trust: { anchors: [{ name: 'oem', publicKey: key.publicKey }] }, vendorId, classId };
try {
  let blocks = 0;
  try {
    // Power fails after 25 blocks have overwritten the old image.
    await runUpdate({ ...opts, onEvent: (e) => void (e.type === 'block' && ++blocks === 25 && flash.cutAfter(0)) });
  } catch (e) {
    if (!isCoapfwError(e, 'POWER_CUT')) throw e;
    flash.powerOn();
  }
  const b = await bootInPlace(flash, layout);
  console.log(`power cut after ${blocks} blocks: boot ${b.state}${b.state === 'recovery' ? ` (${b.reason}, journal at block ${b.nextBlock})` : ''}`);
  const p = await powerOnInPlace(opts);
  const ok = p.boot.state === 'run' && createHash('sha256').update(image).digest().equals(p.boot.image.digest);
  console.log(`recovery loader: ${p.recoveries.map((r) => `${r.result}, ${r.blocksResumed} blocks resumed, ${r.blocksFetched} fetched`).join('; ')}`);
  console.log(`boot: ${p.boot.state}, the new image: ${ok}, installed sequence ${p.installedSequence}`);
  if (!ok) process.exitCode = 1;
} finally {
  await client.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
