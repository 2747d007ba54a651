/**
 * coapfw/delta: the publisher makes a delta from the installed image to the
 * new one (bsdiff matching, 4 KiB frames, DEFLATE); the device applies it
 * against what it runs, and a delta for another source is refused before
 * anything is written.
 */
import { createHash, randomBytes } from 'node:crypto';
import { isCoapfwError } from 'coapfw';
import { applyDelta, createDelta, decodeDeltaHeader } from 'coapfw/delta';

// A 200 KiB "firmware" and its next version: a patched region, an inserted table, moved code.
const v1 = randomBytes(200 * 1024);
const v2 = Buffer.concat([v1.subarray(0, 50_000), Buffer.from('PATCHED'), v1.subarray(50_007, 120_000), randomBytes(3000), v1.subarray(120_000)]);
const delta = createDelta(v1, v2, { frameSize: 4096 });
const header = decodeDeltaHeader(delta);
console.log(`delta: ${delta.length} bytes for a ${v2.length}-byte image (${((100 * delta.length) / v2.length).toFixed(1)} %), frames of ${header.frameSize} bytes`);

const applied = await applyDelta(delta, v1, { expectTargetSize: v2.length });
const same = createHash('sha256').update(applied.target).digest().equals(createHash('sha256').update(v2).digest());
console.log(`applied on the device: ${applied.target.length} bytes, identical to the new image: ${same}, working memory ${applied.workingMemory} bytes`);
if (!same) process.exitCode = 1;

try {
  await applyDelta(delta, randomBytes(v1.length));
  console.log('applied to the wrong source?');
  process.exitCode = 1;
} catch (e) {
  if (!isCoapfwError(e)) throw e;
  console.log(`another installed image: refused, ${e.code}`);
}
