/**
 * coapfw/flash: a file plays the device's flash chip. Lay out the A/B
 * slots, write an image into the secondary slot and hash it back; NOR rules
 * hold, so writing over bytes that are not erased is refused.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCoapfwError } from 'coapfw';
import { FileFlash, createLayout, hashArea, writeImage } from 'coapfw/flash';

const dir = await mkdtemp(join(tmpdir(), 'coapfw-example-'));
const flash = await FileFlash.open(join(dir, 'dev.flash'), { size: 256 * 1024, eraseBlockSize: 4096 });
try {
  const layout = createLayout(flash, { slotSize: 96 * 1024 });
  const areas = (['primary', 'secondary', 'scratch', 'bootLog', 'journal'] as const).map((n) => `${n} @${layout[n].offset} (${layout[n].size / 1024} KiB)`);
  console.log(`layout: ${areas.join(', ')}`);
  const image = randomBytes(40_000);
  await writeImage(flash, layout.secondary, image);
  const back = Buffer.from(await hashArea(flash, layout.secondary, image.length)).toString('hex');
  const want = createHash('sha256').update(image).digest('hex');
  console.log(`secondary slot sha256 matches: ${back === want}`);
  try {
    await flash.write(layout.secondary.offset, new Uint8Array(4));
    console.log('overwrote programmed bytes?');
    process.exitCode = 1;
  } catch (e) {
    if (!isCoapfwError(e)) throw e;
    console.log(`write over programmed bytes: ${e.code}`);
  }
} finally {
  await flash.close();
  await rm(dir, { recursive: true, force: true });
}
