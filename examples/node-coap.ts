/**
 * coapfw/node-coap: an application already runs a node-coap server; it
 * mounts coapfw's firmware resources on it (stateless Block2 with ETag and
 * Size2, resumable from any block) and keeps its own routes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Socket } from 'node:dgram';
import coap from 'coap';
import { fetchAll, openClient } from 'coapfw/client';
import { Code, pathOptions } from 'coapfw/codec';
import { nodeCoapFileHandler } from 'coapfw/node-coap';
import { FileRepository } from 'coapfw/server';

const dir = await mkdtemp(join(tmpdir(), 'coapfw-example-'));
const image = randomBytes(20_000);
await writeFile(join(dir, 'fw.bin'), image);
const repo = await FileRepository.open(dir);
const firmware = nodeCoapFileHandler(repo);
const app = coap.createServer((req, res) => {
  if (firmware(req, res)) return; // /files/..., /fw/sha256/..., /.well-known/core
  if (req.url === '/temperature') return void res.end('21.5');
  res.code = '4.04';
  res.end();
});
await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', () => resolve()));
const port = (app._sock as Socket).address().port; // node-coap keeps its socket here
const client = await openClient(`coap://127.0.0.1:${port}/`);
try {
  const { data, etag } = await fetchAll(client.request, { runtime: client.runtime, options: pathOptions('/files/fw.bin') });
  const same = createHash('sha256').update(data).digest().equals(createHash('sha256').update(image).digest());
  console.log(`firmware through node-coap: ${data.length} bytes, ETag ${Buffer.from(etag!).toString('hex')}, intact: ${same}`);
  const t = await client.request({ code: Code.GET, options: pathOptions('/temperature') });
  console.log(`the application's own route still answers: ${new TextDecoder().decode(t.payload)}`);
  if (!same) process.exitCode = 1;
} finally {
  await client.close();
  await new Promise<void>((resolve) => app.close(() => resolve()));
  await repo.close();
  await rm(dir, { recursive: true, force: true });
}
