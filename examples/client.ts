/**
 * coapfw/client: download a file block-wise, get interrupted half-way, and
 * resume from the partial file: only the missing blocks are fetched again,
 * and the result is checked against the SHA-256 the server's content
 * address names.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isCoapfwError } from 'coapfw';
import { downloadToFile, openClient } from 'coapfw/client';
import { startFileServer } from 'coapfw/server';

const dir = await mkdtemp(join(tmpdir(), 'coapfw-example-'));
const image = randomBytes(200 * 1024);
const sha = createHash('sha256').update(image).digest('hex');
await writeFile(join(dir, 'kernel.img'), image);
const server = await startFileServer({ dir, host: '127.0.0.1', port: 0 });
const uri = `coap://127.0.0.1:${server.address().port}/fw/sha256/${sha}`;
const out = join(dir, 'downloaded.img');
try {
  // First run: give up after 50 blocks, as a Ctrl-C would.
  const stop = new AbortController();
  const first = await openClient(uri);
  try {
    await downloadToFile(first, uri, out, { onProgress: (p) => p.block === 49 && stop.abort(), signal: stop.signal });
  } catch (e) {
    if (!isCoapfwError(e, 'ABORTED')) throw e;
    console.log(`interrupted: ${e.code}, the partial download stays in ${out}.part`);
  } finally {
    await first.close();
  }
  // Second run: --resume.
  const client = await openClient(uri);
  try {
    const r = await downloadToFile(client, uri, out, { resume: true });
    console.log(`resumed at byte ${r.resumedFrom}, fetched ${r.blocks} more blocks, ${r.bytes} bytes in all`);
  } finally {
    await client.close();
  }
  const got = createHash('sha256').update(await readFile(out)).digest('hex');
  console.log(got === sha ? `sha256 ok: ${sha.slice(0, 16)}…` : `sha256 MISMATCH: ${got}`);
  if (got !== sha) process.exitCode = 1;
} finally {
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
