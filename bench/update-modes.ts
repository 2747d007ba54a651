/**
 * One device update (runUpdate on MemoryFlash, 1024-byte blocks) with
 * Q-Block2 (RFC 9177, the update given the client's response stream) against
 * Block2 (`qblock2: false`), interleaved run by run, on loopback and through
 * the user-space relay at 20 ms RTT (bench/relay.ts). Per mode: median wall
 * time, median CPU time of this process (device and server both run in it,
 * so this is the pair's CPU), and the image requests the device sent
 * (counted at its transport).
 */
import { decodeMessage } from '../src/codec/message.js';
import { uriPath } from '../src/codec/options.js';
import { openClient } from '../src/client/open.js';
import { powerOn, provisionDevice } from '../src/device/device.js';
import { runUpdate } from '../src/device/updater.js';
import { createLayout } from '../src/flash/layout.js';
import { MemoryFlash } from '../src/flash/memory.js';
import type { SuitPrivateKey } from '../src/suit/keys.js';
import { tapTransport } from '../src/testing/tap.js';
import { UdpRelay } from './relay.js';

type Mode = 'qblock2' | 'block2';

interface Run {
  readonly ms: number;
  readonly cpuMs: number;
  readonly requests: number;
  readonly mode: string | undefined;
}

function isImageRequest(d: Uint8Array): boolean {
  try {
    return uriPath(decodeMessage(d))[0] === 'fw';
  } catch {
    return false;
  }
}

async function once(uri: string, key: SuitPrivateKey, ids: { vendorId: Uint8Array; classId: Uint8Array }, mode: Mode): Promise<Run> {
  const flash = new MemoryFlash({ size: 1024 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 480 * 1024 });
  await provisionDevice(flash, layout, new Uint8Array(64).fill(0x42), 0);
  await powerOn(flash, layout);
  let requests = 0;
  let seen: string | undefined;
  const client = await openClient(uri, { wrapTransport: (t) => tapTransport(t, { sent: (d) => void (isImageRequest(d) && requests++) }) });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    const st = await runUpdate({
      flash,
      layout,
      request: client.request,
      openStream: (l) => client.openStream(l),
      qblock2: mode === 'qblock2',
      manifestUri: uri,
      runtime: client.runtime,
      trust: { anchors: [{ publicKey: key.publicKey }] },
      ...ids,
      onEvent: (e) => void (e.type === 'transfer' && (seen = e.mode)),
    });
    if (st.result !== 'installed') throw new Error(`bench: update ${mode} ended ${JSON.stringify(st)}`);
  } finally {
    await client.close();
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000, requests, mode: seen };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r1 = (x: number): number => Number(x.toFixed(1));

/** `runs` of each mode against `uri`, interleaved; medians per mode and the Block2/Q-Block2 ratios. */
async function compare(uri: string, key: SuitPrivateKey, ids: { vendorId: Uint8Array; classId: Uint8Array }, runs: number): Promise<Record<string, unknown>> {
  const by: Record<Mode, Run[]> = { qblock2: [], block2: [] };
  for (let i = 0; i < runs; i++) for (const m of ['qblock2', 'block2'] as const) by[m].push(await once(uri, key, ids, m));
  const sum = (rs: Run[]) => ({ msMedian: r1(median(rs.map((r) => r.ms))), cpuMsMedian: r1(median(rs.map((r) => r.cpuMs))), imageRequests: median(rs.map((r) => r.requests)), modeSeen: rs[0]!.mode });
  const q = sum(by.qblock2);
  const b = sum(by.block2);
  return { runs, qblock2: q, block2: b, block2OverQblock2Time: r1(b.msMedian / q.msMedian), block2OverQblock2Requests: r1(b.imageRequests / q.imageRequests) };
}

/** The comparison on loopback (`port` of the file server on 127.0.0.1) and through a 20 ms RTT relay. */
export async function qblock2VsBlock2(port: number, key: SuitPrivateKey, ids: { vendorId: Uint8Array; classId: Uint8Array }, runs: number): Promise<Record<string, unknown>> {
  const path = '/files/app.suit';
  const loopback = await compare(`coap://127.0.0.1:${port}${path}`, key, ids, runs);
  const relay = await UdpRelay.start({ target: { address: '127.0.0.1', port }, rttMs: 20 });
  try {
    // Block2 at 20 ms RTT is one round trip per block (about 5 s for 256 KiB): fewer runs.
    const rtt20 = await compare(`coap://127.0.0.1:${relay.port}${path}`, key, ids, Math.min(runs, 3));
    return { loopback, rtt20ms: rtt20, note: 'cpuMs is this process: the device and the file server together' };
  } finally {
    await relay.close();
  }
}
