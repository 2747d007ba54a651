/**
 * Many devices at once (issue #9's target: 1000 devices fetching 256 KiB
 * from one server, all complete, server RSS <= 150 MB), printed as JSON.
 *
 *   node dist/bench/many-devices.js [--devices 1000] [--size 262144] [--procs 10]
 *
 * One `coapfw serve` process (a separate process, as deployed) serves one
 * file; `--procs` client processes of this script (`--child`) each open
 * devices/procs clients, every one its own UDP socket and port, and fetch the
 * file with `fetchBlocks` (plain Block2, lock-step: one request in flight per
 * device, as RFC 7252 §4.7's NSTART 1 allows an unknown server), all at once.
 * Each device hashes what it received and the parent checks every SHA-256.
 * The server's peak RSS is VmHWM from /proc/<pid>/status (Linux), its CPU
 * time per block comes from /proc/<pid>/stat over the whole run.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { fetchBlocks } from '../src/blockwise/fetch.js';
import { openClient, type CoapClient } from '../src/client/open.js';
import { fixtureBytes, freeUdpPort, killAll, processCpuMs, sha256Hex, startDaemon } from './procs.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = resolve(HERE, '../src/cli/bin.cjs');

/** What one client process reports: a line of JSON on stdout. */
interface ChildResult {
  readonly hashes: string[];
  readonly failures: string[];
  readonly retries: number;
  readonly maxMs: number;
}

async function child(port: number, devices: number): Promise<void> {
  const uri = `coap://127.0.0.1:${port}/files/image.bin`;
  const clients: CoapClient[] = [];
  for (let i = 0; i < devices; i++) clients.push(await openClient(uri));
  const t0 = performance.now();
  let retries = 0;
  let maxMs = 0;
  const failures: string[] = [];
  const hashes = await Promise.all(
    clients.map(async (c) => {
      const h = sha256.create();
      try {
        // Generous retries: a thousand devices at once overflow socket buffers now and then (a lost datagram is a CON retransmission).
        const retry = { attempts: 8, baseMs: 200 };
        for await (const b of fetchBlocks(c.request, { runtime: c.runtime, options: c.options, retry, onProgress: (p) => (retries = Math.max(retries, p.retries)) })) h.update(b.data);
        maxMs = Math.max(maxMs, performance.now() - t0);
        return bytesToHex(h.digest());
      } catch (e) {
        failures.push((e as Error).message);
        return '';
      } finally {
        await c.close();
      }
    }),
  );
  const r: ChildResult = { hashes, failures: failures.slice(0, 5), retries, maxMs: Math.round(maxMs) };
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

/** VmHWM and VmRSS of `pid` in MiB (Linux), or undefined. */
async function memoryMiB(pid: number | undefined): Promise<{ hwm: number; rss: number } | undefined> {
  if (pid === undefined) return undefined;
  try {
    const s = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { hwm: Math.round(kb('VmHWM') / 102.4) / 10, rss: Math.round(kb('VmRSS') / 102.4) / 10 };
  } catch {
    return undefined;
  }
}

function runChild(port: number, devices: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', '--port', String(port), '--devices', String(devices)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => {
      try {
        resolve(JSON.parse(out) as ChildResult);
      } catch {
        reject(new Error(`client process exited ${code}: ${out.slice(0, 500)}`));
      }
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { child: { type: 'boolean' }, port: { type: 'string' }, devices: { type: 'string' }, size: { type: 'string' }, procs: { type: 'string' } } });
  const devices = Number(values.devices ?? 1000);
  if (values.child) return child(Number(values.port), devices);
  const size = Number(values.size ?? 256 * 1024);
  const procs = Math.min(devices, Number(values.procs ?? 10));
  const work = await mkdtemp(join(tmpdir(), 'coapfw-many-'));
  const dir = join(work, 'files');
  await mkdir(dir);
  const image = fixtureBytes(size, 7);
  await writeFile(join(dir, 'image.bin'), image);
  const expected = sha256Hex(image);
  const port = await freeUdpPort();
  const server = startDaemon(process.execPath, [CLI, 'serve', dir, '--host', '127.0.0.1', '--port', String(port)]);
  try {
    for (let i = 0; i < 200 && !server.output().includes('serving'); i++) await new Promise((r) => setTimeout(r, 50));
    if (!server.output().includes('serving')) throw new Error(`coapfw serve did not start: ${server.output()}`);
    const pid = server.child.pid;
    const before = await memoryMiB(pid);
    let peakRss = before?.rss ?? 0;
    const poll = setInterval(() => void memoryMiB(pid).then((m) => (peakRss = Math.max(peakRss, m?.rss ?? 0))), 100);
    const cpu0 = processCpuMs(pid);
    const t0 = performance.now();
    const perProc = Array.from({ length: procs }, (_, i) => Math.floor(devices / procs) + (i < devices % procs ? 1 : 0));
    const results = await Promise.all(perProc.map((n) => runChild(port, n)));
    const wallMs = performance.now() - t0;
    const cpu1 = processCpuMs(pid);
    clearInterval(poll);
    const after = await memoryMiB(pid);
    const hashes = results.flatMap((r) => r.hashes);
    const blocks = devices * Math.ceil(size / 1024);
    const out = {
      devices,
      bytesEach: size,
      clientProcesses: procs,
      completed: hashes.filter((h) => h === expected).length,
      wrongOrFailed: hashes.filter((h) => h !== expected).length,
      failures: results.flatMap((r) => r.failures).slice(0, 5),
      maxRetriesOfOneBlock: Math.max(...results.map((r) => r.retries)),
      wallMs: Math.round(wallMs),
      slowestDeviceMs: Math.max(...results.map((r) => r.maxMs)),
      server: {
        startRssMiB: before?.rss ?? null,
        peakRssMiB: after?.hwm ?? null,
        peakRssSampledMiB: peakRss,
        endRssMiB: after?.rss ?? null,
        cpuUsPerBlock: cpu0 === undefined || cpu1 === undefined ? null : Math.round(((cpu1 - cpu0) * 1000 * 10) / blocks) / 10,
      },
      target: { rssMiB: 150, allComplete: true },
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    if (out.wrongOrFailed > 0) process.exitCode = 1;
  } finally {
    await server.stop();
    killAll();
    await rm(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  killAll();
  process.stderr.write(`many-devices: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
