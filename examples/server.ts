/**
 * coapfw/server, embedded: a gateway serves a directory of images and a
 * resource of its own (`/gateway/health`, listed in `/.well-known/core`),
 * on an ephemeral port it chose, and shuts it down when it is done.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openClient } from 'coapfw/client';
import { Code, ContentFormat, OptionNumber, codeToString, pathOptions, uintOption } from 'coapfw/codec';
import { resourceTable, startFileServer, type Resource } from 'coapfw/server';

const dir = await mkdtemp(join(tmpdir(), 'coapfw-example-'));
await writeFile(join(dir, 'app-v2.bin'), Buffer.alloc(3000, 7));
const started = Date.now();
const health: Resource = {
  methods: new Set([Code.GET]),
  handle: () => ({
    code: Code.CONTENT,
    options: [uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.JSON)],
    payload: new TextEncoder().encode(JSON.stringify({ ok: true, upMs: Date.now() - started })),
  }),
};
const server = await startFileServer({
  dir,
  host: '127.0.0.1',
  port: 0,
  resources: resourceTable({ 'gateway/health': health }),
  links: [{ target: '/gateway/health', attributes: { rt: 'gateway.health', ct: String(ContentFormat.JSON) } }],
});
const base = `coap://127.0.0.1:${server.address().port}`;
const client = await openClient(base);
try {
  const get = async (path: string): Promise<string> => {
    const res = await client.request({ code: Code.GET, options: pathOptions(path) });
    return `${codeToString(res.code)} ${new TextDecoder().decode(res.payload)}`;
  };
  console.log(`serving ${server.repo.list().length} file(s) at ${base}`);
  console.log(`/gateway/health -> ${await get('/gateway/health')}`);
  const core = await get('/.well-known/core');
  console.log(`/.well-known/core lists the gateway resource: ${core.includes('</gateway/health>')}, the file: ${core.includes('</files/app-v2.bin>')}`);
  console.log(`/files/nope -> ${await get('/files/nope')}`);
} finally {
  await client.close();
  await server.close();
  await rm(dir, { recursive: true, force: true });
}
