import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToHex } from '@noble/hashes/utils.js';
import { downloadToFile } from '../../src/client/file-sink.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { bufferSource } from '../../src/blockwise/source.js';
import { pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint } from '../../src/messaging/endpoint.js';
import type { CoapClient } from '../../src/client/open.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const image = Uint8Array.from({ length: 8192 }, (_, i) => (i * 7) & 0xff); // exactly 8 blocks of 1024
const src = bufferSource(image);
let dir: string;
let served = 0;

function client(): CoapClient {
  const net = new MemNetwork();
  const rt = new FakeRuntime(1);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  server.handle((req) => (served++, serveBlock2(req.message, src)));
  const endpoint = new CoapEndpoint(net.endpoint('10.0.0.2', 1), { runtime: rt });
  return {
    uri: { scheme: 'coap', host: SERVER.address, port: SERVER.port, path: ['img'], query: [] },
    peer: SERVER,
    endpoint,
    runtime: rt,
    options: pathOptions('/img'),
    request: (spec, o) => endpoint.request(SERVER, spec, o ?? {}),
    close: () => endpoint.close(),
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-dl-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('downloadToFile --resume', () => {
  it('finishes a part that is already complete (killed before the rename) by fetching its last block again', async () => {
    const out = join(dir, 'complete.bin');
    await writeFile(`${out}.part`, image);
    await writeFile(`${out}.part.json`, JSON.stringify({ uri: 'u', etag: bytesToHex(src.etag), szx: 6 }));
    served = 0;
    const r = await downloadToFile(client(), 'u', out, { resume: true });
    expect(served).toBe(1);
    expect(r.resumedFrom).toBe(7 * 1024);
    expect(new Uint8Array(await readFile(out))).toEqual(image);
  });

  it('ignores a partial-download record with a malformed ETag and starts over', async () => {
    const out = join(dir, 'odd.bin');
    await writeFile(`${out}.part`, image.subarray(0, 3000));
    await writeFile(`${out}.part.json`, JSON.stringify({ uri: 'u', etag: 'abc', szx: 6 }));
    served = 0;
    const r = await downloadToFile(client(), 'u', out, { resume: true });
    expect(r.resumedFrom).toBe(0);
    expect(served).toBe(8);
    expect(new Uint8Array(await readFile(out))).toEqual(image);
  });
});
