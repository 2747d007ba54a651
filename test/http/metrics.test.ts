/**
 * /metrics scraped during a real block-wise transfer over loopback: every
 * counter moves the way the transfer says it must (blocks, GETs and 2.05s
 * agree, bytes grow by at least a block each, nothing goes backwards), and
 * the store's gauges show the devices and rollout targets.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchBlocks } from '../../src/blockwise/fetch.js';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { pathOptions } from '../../src/codec/options.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { startFleet, TOKEN, type Fleet } from './fleet-fixture.js';

let dir: string;
let server: FileServer;
let client: CoapClient;
let http: HttpServer;
let fleet: Fleet;
const SIZE = 64 * 1024;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-metrics-'));
  await writeFile(join(dir, 'image.bin'), Uint8Array.from({ length: SIZE }, (_, i) => i & 0xff));
  server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
  client = await openClient(`coap://127.0.0.1:${server.address().port}/`);
  fleet = await startFleet(50);
  http = await startHttpServer({
    port: 0,
    token: TOKEN,
    store: fleet.store,
    engine: fleet.engine,
    metrics: {
      endpoints: () => server.endpoints.map((endpoint) => ({ transport: 'coap', endpoint })),
      observe: () => server.observe,
      blocksServed: () => server.files.blocks,
    },
  });
});
afterAll(async () => {
  await http?.close();
  await fleet?.close();
  await client?.close();
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Names the exposition declares `counter` (`# TYPE name counter`): the ones that never go down. */
const counters = new Set<string>();

/** One scrape as `name{labels}` -> value. */
async function scrape(): Promise<Map<string, number>> {
  const text = await (await fetch(`${http.url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) counter$/.exec(line);
    if (type) counters.add(type[1]!);
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
const v = (m: Map<string, number>, key: string): number => m.get(key) ?? 0;

describe('metrics', () => {
  it('counters move consistently during a transfer', async () => {
    const before = await scrape();
    const samples: Array<Map<string, number>> = [];
    let blocks = 0;
    for await (const _ of fetchBlocks(client.request, { runtime: client.runtime, options: pathOptions('/files/image.bin') })) {
      blocks++;
      if (blocks % 16 === 0) samples.push(await scrape());
    }
    samples.push(await scrape());
    expect(blocks).toBe(SIZE / 1024);
    expect(samples.length).toBe(5);
    for (const [i, s] of samples.entries()) {
      const served = v(s, 'coapfw_blocks_served_total') - v(before, 'coapfw_blocks_served_total');
      const gets = v(s, 'coapfw_coap_requests_total{transport="coap",method="GET"}') - v(before, 'coapfw_coap_requests_total{transport="coap",method="GET"}');
      const ok = v(s, 'coapfw_coap_responses_total{transport="coap",code="2.05"}') - v(before, 'coapfw_coap_responses_total{transport="coap",code="2.05"}');
      const sent = v(s, 'coapfw_coap_bytes_sent_total{transport="coap"}') - v(before, 'coapfw_coap_bytes_sent_total{transport="coap"}');
      // Each scrape sees the blocks fetched so far: 16, 32, 48, 64, 64.
      expect(served, `sample ${i}`).toBe(Math.min(16 * (i + 1), 64));
      expect(gets).toBe(served);
      expect(ok).toBe(served);
      expect(sent).toBeGreaterThanOrEqual(served * 1024);
      expect(v(s, 'coapfw_coap_datagrams_received_total{transport="coap"}')).toBeGreaterThanOrEqual(v(s, 'coapfw_coap_requests_total{transport="coap",method="GET"}'));
      // Counters only: a gauge may go down, whatever its name (prom-client's nodejs_active_resources_total is one).
      if (i > 0) for (const [key, value] of samples[i - 1]!) if (counters.has(key.replace(/\{.*$/, ''))) expect(v(s, key), key).toBeGreaterThanOrEqual(value);
    }
    expect(counters.has('coapfw_coap_bytes_sent_total')).toBe(true);
    const last = samples.at(-1)!;
    expect(v(last, 'coapfw_coap_retransmissions_total{transport="coap"}')).toBe(0); // loopback loses nothing
    expect(v(last, 'coapfw_cpu_seconds_per_block')).toBeGreaterThanOrEqual(0);
    expect(v(last, 'process_cpu_seconds_total')).toBeGreaterThan(0);
  });

  it('a 4.04 counts as a response by its code', async () => {
    const before = await scrape();
    await client.request({ code: 1, options: pathOptions('/files/missing') });
    const after = await scrape();
    expect(v(after, 'coapfw_coap_responses_total{transport="coap",code="4.04"}') - v(before, 'coapfw_coap_responses_total{transport="coap",code="4.04"}')).toBe(1);
  });

  it('devices by state and rollout targets from the store', async () => {
    const m = await scrape();
    const devices = [...m].filter(([k]) => k.startsWith('coapfw_devices{')).reduce((n, [, x]) => n + x, 0);
    expect(devices).toBe(50);
    const targets = [...m].filter(([k]) => k.startsWith(`coapfw_rollout_targets{rollout="${fleet.rolloutId}"`)).reduce((n, [, x]) => n + x, 0);
    expect(targets).toBe(25); // the fixture's rollout: 5 in wave 1, 20 in wave 2
    expect(v(m, 'coapfw_rollouts{state="running"}')).toBe(1);
  });
});
