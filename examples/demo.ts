/**
 * `npm start`: the whole story on loopback, no arguments, about a second.
 *
 * 1. An operator makes a signing key, signs a SUIT manifest for a 256 KiB
 *    image and serves both with the CoAP file server.
 * 2. A device (an in-memory NOR flash with a factory image) fetches the
 *    manifest, verifies it and downloads the image block by block straight
 *    into its secondary slot, and loses power in the middle.
 * 3. Powered on again, it resumes from its journal (skipping the blocks it
 *    already has), verifies the image, requests a test boot, reboots into
 *    the new image in test mode and confirms it.
 * Exit code 0 only if the device ends up running the new image, confirmed.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { isCoapfwError } from 'coapfw';
import { openClient } from 'coapfw/client';
import { bootStatus, postStatus, powerOn, provisionDevice, runUpdate, type PowerOnResult, type UpdateEvent, type UpdateStatus } from 'coapfw/device';
import { createLayout, hashArea, type FlashLayout } from 'coapfw/flash';
import { startFileServer } from 'coapfw/server';
import { createEnvelope, privateKeyFromSecret, type TrustPolicy } from 'coapfw/suit';
import { MemoryFlash } from 'coapfw/testing';

const IMAGE_SIZE = 256 * 1024;
const CUT_AFTER_BLOCKS = 150;
const VENDOR = Uint8Array.from(Buffer.from('fa6b4a53d5ad5fdfbe9de663e4d41ffe', 'hex'));
const CLASS = Uint8Array.from(Buffer.from('1492af1425695e48bf429b2d51f2ab45', 'hex'));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const say = (s: string): void => void process.stdout.write(`${s}\n`);

function progress(flash: MemoryFlash, cutAt: number | undefined): (e: UpdateEvent) => void {
  let blocks = 0;
  return (e) => {
    if (e.type === 'envelope') say(`  manifest: ${e.bytes} bytes, sequence ${e.sequence}, image ${e.imageSize} bytes`);
    else if (e.type === 'resume' && e.fromBlock > 0) say(`  journal: resuming at block ${e.fromBlock}: ${e.fromBlock} blocks (${(e.fromBlock * e.blockSize) / 1024} KiB) not fetched again`);
    else if (e.type === 'state' && e.state !== 'download') say(`  state: ${e.state}`);
    else if (e.type === 'block') {
      blocks++;
      const done = e.offset + e.bytes;
      if (e.num % 32 === 31 || done === e.imageSize) say(`  download: block ${e.num}, ${Math.round((100 * done) / e.imageSize)}% (${done}/${e.imageSize} bytes)`);
      if (cutAt !== undefined && blocks === cutAt) {
        say(`  *** power cut after ${blocks} blocks ***`);
        flash.cutAfter(0); // the next flash write or erase dies half-way
      }
    } else if (e.type === 'restart') say(`  restart: ${e.reason}`);
  };
}

async function update(manifestUri: string, flash: MemoryFlash, layout: FlashLayout, trust: TrustPolicy, cutAt?: number): Promise<UpdateStatus> {
  const client = await openClient(manifestUri, { params: { ackTimeoutMs: 500 } });
  try {
    return await runUpdate({
      flash,
      layout,
      request: client.request,
      manifestUri,
      runtime: client.runtime,
      trust,
      vendorId: VENDOR,
      classId: CLASS,
      blockRetry: { attempts: 5, baseMs: 200, maxMs: 2000 },
      statusPath: '/status/demo-device',
      onEvent: progress(flash, cutAt),
    });
  } finally {
    await client.close();
  }
}

/** The device tells the status tracker how the test boot went (a new connection after the reboot). */
async function reportAfterBoot(manifestUri: string, status: NonNullable<ReturnType<typeof bootStatus>>): Promise<void> {
  const client = await openClient(manifestUri);
  try {
    await postStatus(client.request, '/status/demo-device', status);
  } finally {
    await client.close();
  }
}

function showBoot(p: PowerOnResult): void {
  const actions = p.boot.actions.length > 0 ? ` (${p.boot.actions.join(', ')})` : '';
  say(`  boot: running ${hex(p.boot.image.digest).slice(0, 16)}… in mode ${p.boot.mode}${actions}; ${p.outcome === 'confirmed' ? 'self-test passed, confirmed; ' : ''}installed sequence ${p.installedSequence}`);
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'coapfw-demo-'));
  try {
    say('1. operator: key, image, signed manifest, server');
    const key = privateKeyFromSecret('ed25519', new Uint8Array(randomBytes(32)));
    const trust: TrustPolicy = { anchors: [{ name: 'demo', publicKey: key.publicKey }] };
    const img = new Uint8Array(randomBytes(IMAGE_SIZE));
    const digest = sha256(img);
    await writeFile(join(dir, 'app-v1.bin'), img);
    const envelope = createEnvelope({ sequence: 1, vendorId: VENDOR, classId: CLASS, uri: `/fw/sha256/${hex(digest)}`, digest, size: img.length }, [key]);
    await writeFile(join(dir, 'app-v1.suit'), envelope);
    const server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
    const manifestUri = `coap://127.0.0.1:${server.address().port}/files/app-v1.suit`;
    say(`  image ${img.length} bytes, sha256 ${hex(digest).slice(0, 16)}…; manifest ${envelope.length} bytes at ${manifestUri}`);
    try {
      const flash = new MemoryFlash({ size: 1024 * 1024, eraseBlockSize: 4096 });
      const layout = createLayout(flash, { slotSize: 480 * 1024 });
      await provisionDevice(flash, layout, new TextEncoder().encode('factory image v0'.padEnd(64, '.')), 0);

      say('2. device: power on, update ... and lose power half-way');
      showBoot(await powerOn(flash, layout));
      try {
        await update(manifestUri, flash, layout, trust, CUT_AFTER_BLOCKS);
        say('  the power cut did not happen?');
        return 1;
      } catch (e) {
        if (!isCoapfwError(e, 'POWER_CUT')) throw e;
      }

      say('3. device: power back on, resume, verify, install');
      flash.powerOn();
      showBoot(await powerOn(flash, layout));
      const status = await update(manifestUri, flash, layout, trust);
      say(`  status: ${JSON.stringify(status)}`);
      if (status.result !== 'installed') return 1;

      say('4. device: reboot into the new image (test mode), self-test, confirm');
      const p = await powerOn(flash, layout);
      showBoot(p);
      const after = bootStatus(p);
      if (after) await reportAfterBoot(manifestUri, after);
      say('5. device: reboot again (the confirmed image stays)');
      const q = await powerOn(flash, layout);
      showBoot(q);

      const tracked = server.status.get('demo-device');
      say(`  server status tracker: demo-device reported ${JSON.stringify(tracked?.report ?? null)}`);
      const ok =
        hex(q.boot.image.digest) === hex(digest) &&
        q.boot.mode === 'confirmed' &&
        q.installedSequence === 1 &&
        hex(await hashArea(flash, layout.primary, img.length)) === hex(digest) &&
        status.blocksResumed > 0 &&
        tracked?.report.result === 'confirmed';
      const w = flash.stats;
      say(`  flash: ${w.writes} writes, ${w.erases} erases in all`);
      say(ok ? `OK: resumed ${status.blocksResumed} blocks, fetched ${status.blocksFetched} after the cut; new image confirmed` : 'FAILED');
      return ok ? 0 : 1;
    } finally {
      await server.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`demo failed: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
