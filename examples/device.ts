/**
 * coapfw/device: a device on an in-memory NOR flash updates itself from a
 * coapfw server: fetch and verify the signed envelope, download the image
 * into the secondary slot, request a test boot; then it reboots into the new
 * image, passes its self-test and confirms it (test/confirm/revert).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClient } from 'coapfw/client';
import { powerOn, provisionDevice, runUpdate } from 'coapfw/device';
import { createLayout } from 'coapfw/flash';
import { startFileServer } from 'coapfw/server';
import { createEnvelope, privateKeyFromSecret } from 'coapfw/suit';
import { MemoryFlash } from 'coapfw/testing';

const vendorId = Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex');
const classId = Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex');

// The operator's side: a signed envelope for a 64 KiB image, both served.
const dir = await mkdtemp(join(tmpdir(), 'coapfw-example-'));
const key = privateKeyFromSecret('ed25519', randomBytes(32));
const image = randomBytes(64 * 1024);
const digest = createHash('sha256').update(image).digest();
await writeFile(join(dir, 'app.bin'), image);
await writeFile(join(dir, 'app.suit'), createEnvelope({ sequence: 7, vendorId, classId, uri: `/fw/sha256/${digest.toString('hex')}`, digest, size: image.length }, [key]));
const server = await startFileServer({ dir, host: '127.0.0.1', port: 0 });
const manifestUri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;

// The device: 512 KiB of flash, provisioned with a factory image at sequence 0.
const flash = new MemoryFlash({ size: 512 * 1024, eraseBlockSize: 4096 });
const layout = createLayout(flash, { slotSize: 200 * 1024 });
await provisionDevice(flash, layout, Buffer.from('factory image'), 0);
const client = await openClient(manifestUri);
try {
  const status = await runUpdate({
    flash,
    layout,
    request: client.request,
    runtime: client.runtime,
    manifestUri,
    trust: { anchors: [{ name: 'oem', publicKey: key.publicKey }] },
    vendorId,
    classId,
  });
  console.log(`update: ${status.result} sequence ${status.candidateSequence} (running ${status.installedSequence} until the reboot), ${status.blocksFetched} blocks fetched`);
  const first = await powerOn(flash, layout, { selfTest: () => true });
  console.log(`reboot: mode ${first.boot.mode}, ${first.outcome}, installed sequence ${first.installedSequence}`);
  const second = await powerOn(flash, layout);
  const running = Buffer.from(second.boot.image.digest).equals(digest);
  console.log(`reboot: mode ${second.boot.mode}, running the new image: ${running}`);
  if (!running || status.result !== 'installed') process.exitCode = 1;
} finally {
  await client.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
