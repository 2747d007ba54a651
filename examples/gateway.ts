/**
 * coapfw/gateway: a gateway in front of an update server. Three devices
 * fetch one image through it at once: the gateway fetches it upstream once
 * and serves every device from its cache, block by block, even while it is
 * still arriving. Then the uplink goes down: a device's report is kept on
 * disk, and forwarded when the upstream is back.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchAll, openClient } from 'coapfw/client';
import { Code, ContentFormat, OptionNumber, encodeUint, pathOptions } from 'coapfw/codec';
import { startGateway } from 'coapfw/gateway';
import { resourceTable, startFileServer, type Resource } from 'coapfw/server';
import { systemRuntime } from 'coapfw/transport';

const dir = await mkdtemp(join(tmpdir(), 'coapfw-example-'));
const image = randomBytes(48 * 1024);
const sha = createHash('sha256').update(image).digest('hex');
await writeFile(join(dir, 'app.bin'), image);

// The upstream: a file server, with a report resource of the update service's device protocol.
const reports: string[] = [];
const report: Resource = {
  methods: new Set([Code.POST]),
  handle: (req) => {
    reports.push(new TextDecoder().decode(req.message.payload));
    return { code: Code.CHANGED };
  },
};
const resources = resourceTable({ 'd/dev-1/r': report });
let upstream = await startFileServer({ dir, host: '127.0.0.1', port: 0, resources });
const port = upstream.address().port;

const gw = await startGateway({ upstream: `coap://127.0.0.1:${port}`, cacheDir: join(dir, 'gateway'), host: '127.0.0.1', port: 0, maxForwardBackoffMs: 200 });
const base = `coap://127.0.0.1:${gw.address().port}`;
try {
  const devices = await Promise.all([1, 2, 3].map(() => openClient(`${base}/`)));
  const got = await Promise.all(devices.map((d) => fetchAll(d.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${sha}`), retry: { attempts: 20 } })));
  for (const [i, r] of got.entries()) console.log(`device ${i + 1}: ${r.data.length} bytes, sha256 ${createHash('sha256').update(r.data).digest('hex') === sha ? 'ok' : 'WRONG'}`);
  const s = gw.stats();
  console.log(`upstream sent ${s.cache.upstreamBytes} bytes for 3 devices: the image once; ${s.cache.hits + s.cache.fillingHits} blocks served from the cache`);

  await upstream.close(); // the uplink goes down
  const payload = new TextEncoder().encode(JSON.stringify({ rseq: 1, state: 'installed' }));
  const r = await devices[0]!.request({ code: Code.POST, options: [...pathOptions('/d/dev-1/r'), { number: OptionNumber.CONTENT_FORMAT, value: encodeUint(ContentFormat.JSON) }], payload }, {});
  await gw.flush();
  console.log(`uplink down: report answered ${r.code === Code.CHANGED ? '2.04' : r.code}, ${gw.stats().queue.pending} kept on disk`);
  upstream = await startFileServer({ dir, host: '127.0.0.1', port, resources }); // back, same address
  for (let i = 0; i < 100 && gw.stats().queue.pending > 0; i++) await new Promise((ok) => setTimeout(ok, 50));
  console.log(`uplink back: ${reports.length} report forwarded, ${gw.stats().queue.pending} waiting`);
  await Promise.all(devices.map((d) => d.close()));
} finally {
  await gw.close();
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
}
