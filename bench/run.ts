/**
 * `npm run bench`: 1 MiB over loopback, blocks per second, printed as JSON.
 *
 *   (a) libcoap `coap-client-notls -b 1024` from `coapfw serve` (a separate process), on
 *       coapfw's native UDP socket, and again on node:dgram (COAPFW_NATIVE_UDP=0, the fallback)
 *   (b) the same client from libcoap's `coap-server-notls -d` (file PUT first), same run
 *   (c) our client (`downloadToFile`, and `fetchBlocks` into memory) from `coapfw serve`
 *   (d) tftp-hpa `tftp` from `in.tftpd` (512-byte blocks, RFC 1350) for reference
 *   (e) libcoap's client from bench/minimal-server.ts (coap-packet, nothing but slicing):
 *       what a Node process can do at best, to tell our layers' cost from Node's
 *
 * Each is repeated (BENCH_REPS, default 5), interleaved so that machine noise
 * hits all of them alike; medians are reported. Command-line clients pay a
 * process start per run, so each is also timed on a one-block file and the
 * `net` figures divide the extra blocks by the extra time. Every run's output
 * is checked by SHA-256; a wrong one is counted in `failures`. Wall time on a
 * shared machine is noisy, so the server's CPU time per block (from /proc,
 * Linux) is reported too: that is what a server costs, whoever is faster.
 * Finally `coapfw serve` runs once more under `node --cpu-prof` while libcoap's
 * client fetches the file; `whereTheTimeGoes` summarises that profile.
 */
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { downloadToFile } from '../src/client/file-sink.js';
import { fetchBlocks } from '../src/blockwise/fetch.js';
import { openClient } from '../src/client/open.js';
import {
  COAP_CLIENT,
  fixtureBytes,
  freeUdpPort,
  hasCommand,
  killAll,
  libcoapMissing,
  processCpuMs,
  putToLibcoap,
  run,
  sha256File,
  sha256Hex,
  startDaemon,
  startLibcoapServer,
} from './procs.js';
import { summariseProfile } from './profile.js';

const MIB = 1024 * 1024;
const REPS = Math.max(1, Number(process.env.BENCH_REPS ?? 9));
const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = resolve(HERE, '../src/cli/bin.cjs');
const MINIMAL = resolve(HERE, 'minimal-server.js');
const BIG = 'big.bin';
const TINY = 'tiny.bin';

/** Median of the timings of one scenario, and what it means in blocks per second. */
interface Scenario {
  blockSize: number;
  blocks: number;
  medianMs: number;
  /** Median of the one-block run (process start, socket set-up), when measured. */
  medianOneBlockMs?: number;
  blocksPerSec: number;
  /** (blocks - 1) / (medianMs - medianOneBlockMs): without the per-run start-up. */
  netBlocksPerSec?: number;
  runsMs: number[];
  failures: number;
}

type Timed = { ms: number; ok: boolean };

async function timeCommand(cmd: string, args: string[], out: string, expected: string, cwd?: string): Promise<Timed> {
  await rm(out, { force: true });
  const t0 = process.hrtime.bigint();
  const r = await run(cmd, args, 120_000, cwd);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, ok: r.code === 0 && !r.timedOut && (await sha256File(out)) === expected };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function scenario(blockSize: number, blocks: number, full: Timed[], one?: Timed[]): Scenario {
  const medianMs = median(full.map((t) => t.ms));
  const s: Scenario = {
    blockSize,
    blocks,
    medianMs: round(medianMs),
    blocksPerSec: Math.round(blocks / (medianMs / 1000)),
    runsMs: full.map((t) => round(t.ms)),
    failures: full.filter((t) => !t.ok).length + (one?.filter((t) => !t.ok).length ?? 0),
  };
  if (one) {
    const oneMs = median(one.map((t) => t.ms));
    s.medianOneBlockMs = round(oneMs);
    if (medianMs > oneMs) s.netBlocksPerSec = Math.round((blocks - 1) / ((medianMs - oneMs) / 1000));
  }
  return s;
}

const round = (x: number): number => Math.round(x * 100) / 100;

async function startOurServer(dir: string, nodeArgs: string[] = [], env?: NodeJS.ProcessEnv): Promise<Started> {
  const port = await freeUdpPort();
  return startNode([...nodeArgs, CLI, 'serve', dir, '--host', '127.0.0.1', '--port', String(port)], port, env);
}

/** Start a Node server process and wait until it prints `serving`. */
/** A started server process. */
interface Started {
  port: number;
  pid: number | undefined;
  stop: () => Promise<void>;
}

async function startNode(args: string[], port: number, env?: NodeJS.ProcessEnv): Promise<Started> {
  const d = startDaemon(process.execPath, args, undefined, env);
  for (let i = 0; i < 100 && !d.output().includes('serving'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!d.output().includes('serving')) {
    await d.stop();
    throw new Error(`${args.join(' ')} did not start: ${d.output()}`);
  }
  return { port, pid: d.child.pid, stop: d.stop };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'coapfw-bench-'));
  const files = join(work, 'files');
  await mkdir(files);
  const big = fixtureBytes(MIB, 1);
  const tiny = fixtureBytes(16, 2);
  await writeFile(join(files, BIG), big);
  await writeFile(join(files, TINY), tiny);
  await chmod(work, 0o755); // in.tftpd drops to nobody and chroots into files/
  await chmod(files, 0o755);
  const bigHash = sha256Hex(big);
  const tinyHash = sha256Hex(tiny);
  const out = (name: string): string => join(work, name);
  const result: Record<string, unknown> = { file: { bytes: MIB }, repetitions: REPS, node: process.version };
  const skipped: Record<string, string> = {};
  const stops: Array<() => Promise<void>> = [];
  try {
    const ours = await startOurServer(files);
    stops.push(ours.stop);
    const oursUri = (f: string): string => `coap://127.0.0.1:${ours.port}/files/${f}`;
    // The same server on node:dgram, the fallback where the native socket is not built.
    const oursDgram = await startOurServer(files, [], { ...process.env, COAPFW_NATIVE_UDP: '0' });
    stops.push(oursDgram.stop);
    const coapMissing = libcoapMissing();
    let libcoapUri: ((f: string) => string) | undefined;
    let libcoapPid: number | undefined;
    if (coapMissing === undefined) {
      const lc = await startLibcoapServer();
      stops.push(lc.stop);
      for (const f of [BIG, TINY]) {
        const put = await putToLibcoap(lc.uri(f), join(files, f));
        if (put.code !== 0) throw new Error(`PUT ${f} to coap-server-notls failed: ${put.stderr}`);
      }
      libcoapUri = lc.uri;
      libcoapPid = lc.pid;
    } else {
      skipped.libcoap = coapMissing;
    }
    let tftpPort: number | undefined;
    if (hasCommand('in.tftpd', ['-V']) && hasCommand('tftp', ['-V'])) {
      tftpPort = await freeUdpPort();
      const d = startDaemon('in.tftpd', ['-L', '-s', files, '-a', `127.0.0.1:${tftpPort}`]);
      stops.push(d.stop);
      await new Promise((r) => setTimeout(r, 200));
    } else {
      skipped.tftp = 'in.tftpd or tftp not found (apt-get install tftpd-hpa tftp-hpa)';
    }

    const coapGet = (uri: string, o: string, hash: string): Promise<Timed> => timeCommand(COAP_CLIENT, ['-m', 'get', '-B', '60', '-b', '1024', uri, '-o', o], o, hash);
    const tftpGet = (f: string, o: string, hash: string): Promise<Timed> =>
      timeCommand('tftp', ['-m', 'binary', '127.0.0.1', String(tftpPort), '-c', 'get', f, o], o, hash, work);
    const mport = await freeUdpPort();
    const minimal = await startNode([MINIMAL, join(files, BIG), String(mport)], mport).catch(() => undefined);
    const minimalPort = minimal?.port;
    if (minimal) stops.push(minimal.stop);
    const cpu = new CpuMeter();
    const runs: Record<string, Timed[]> = { a: [], a1: [], ad: [], b: [], b1: [], c: [], c2: [], d: [], d1: [], e: [] };
    for (let i = 0; i < REPS; i++) {
      if (libcoapUri) {
        runs.a!.push(await cpu.measure('a', ours.pid, () => coapGet(oursUri(BIG), out('a.bin'), bigHash)));
        runs.ad!.push(await cpu.measure('ad', oursDgram.pid, () => coapGet(`coap://127.0.0.1:${oursDgram.port}/files/${BIG}`, out('ad.bin'), bigHash)));
        runs.b!.push(await cpu.measure('b', libcoapPid, () => coapGet(libcoapUri!(BIG), out('b.bin'), bigHash)));
        runs.a1!.push(await coapGet(oursUri(TINY), out('a1.bin'), tinyHash));
        runs.b1!.push(await coapGet(libcoapUri(TINY), out('b1.bin'), tinyHash));
        if (minimalPort !== undefined) runs.e!.push(await cpu.measure('e', minimal?.pid, () => coapGet(`coap://127.0.0.1:${minimalPort}/${BIG}`, out('e.bin'), bigHash)));
      }
      runs.c!.push(await ourDownload(oursUri(BIG), out('c.bin'), bigHash));
      runs.c2!.push(await cpu.measure('c2', ours.pid, () => ourFetchInMemory(oursUri(BIG), bigHash)));
      if (tftpPort !== undefined) {
        runs.d!.push(await tftpGet(BIG, out('d.bin'), bigHash));
        runs.d1!.push(await tftpGet(TINY, out('d1.bin'), tinyHash));
      }
    }
    if (libcoapUri) {
      const a = scenario(1024, 1024, runs.a!, runs.a1);
      const b = scenario(1024, 1024, runs.b!, runs.b1);
      result.a_libcoapClient_ourServer = { ...a, serverCpuUsPerBlock: cpu.perBlock('a', REPS * 1024) };
      result.b_libcoapClient_libcoapServer = { ...b, serverCpuUsPerBlock: cpu.perBlock('b', REPS * 1024) };
      const ad = scenario(1024, 1024, runs.ad!, runs.a1);
      result.a_dgram_libcoapClient_ourServerOnDgram = { ...ad, serverCpuUsPerBlock: cpu.perBlock('ad', REPS * 1024) };
      result.ratio_aDgram_over_b = { wall: round(ad.blocksPerSec / b.blocksPerSec), net: ad.netBlocksPerSec && b.netBlocksPerSec ? round(ad.netBlocksPerSec / b.netBlocksPerSec) : null };
      if (runs.e!.length > 0) {
        // One-block baseline: the same client against our server (the minimal one serves only the big file).
        const e = scenario(1024, 1024, runs.e!, runs.a1);
        result.e_libcoapClient_minimalCoapPacketServer = { ...e, serverCpuUsPerBlock: cpu.perBlock('e', REPS * 1024) };
        result.ratio_a_over_e = { wall: round(a.blocksPerSec / e.blocksPerSec), net: a.netBlocksPerSec && e.netBlocksPerSec ? round(a.netBlocksPerSec / e.netBlocksPerSec) : null };
      }
      result.ratio_a_over_b = { wall: round(a.blocksPerSec / b.blocksPerSec), net: a.netBlocksPerSec && b.netBlocksPerSec ? round(a.netBlocksPerSec / b.netBlocksPerSec) : null };
    }
    result.c_ourClient_ourServer = { downloadToFile: scenario(1024, 1024, runs.c!), fetchBlocksInMemory: { ...scenario(1024, 1024, runs.c2!), serverCpuUsPerBlock: cpu.perBlock('c2', REPS * 1024), clientCpuUsPerBlock: round(clientCpuUs / (REPS * 1024)) } };
    if (tftpPort !== undefined) result.d_tftpHpa_inTftpd = scenario(512, Math.floor(MIB / 512) + 1, runs.d!, runs.d1);
    if (libcoapUri) result.whereTheTimeGoes = await profileOurServer(files, work);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    killAll();
    await rm(work, { recursive: true, force: true });
  }
  if (Object.keys(skipped).length > 0) result.skipped = skipped;
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

async function ourDownload(uri: string, o: string, hash: string): Promise<Timed> {
  await rm(o, { force: true });
  const client = await openClient(uri);
  try {
    const t0 = process.hrtime.bigint();
    const r = await downloadToFile(client, uri, o);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { ms, ok: r.bytes === MIB && (await sha256File(o)) === hash };
  } finally {
    await client.close();
  }
}

/** Server CPU time spent during measured runs, per scenario (Linux /proc; empty elsewhere). */
class CpuMeter {
  private readonly ms = new Map<string, number>();

  async measure<T>(key: string, pid: number | undefined, fn: () => Promise<T>): Promise<T> {
    const before = processCpuMs(pid);
    const r = await fn();
    const after = processCpuMs(pid);
    if (before !== undefined && after !== undefined) this.ms.set(key, (this.ms.get(key) ?? 0) + after - before);
    return r;
  }

  /** Microseconds of server CPU per block, or null when not measurable. */
  perBlock(key: string, blocks: number): number | null {
    const ms = this.ms.get(key);
    return ms === undefined ? null : round((ms * 1000) / blocks);
  }
}

let clientCpuUs = 0;

async function ourFetchInMemory(uri: string, hash: string): Promise<Timed> {
  const client = await openClient(uri);
  try {
    const buf = new Uint8Array(MIB);
    let n = 0;
    const t0 = process.hrtime.bigint();
    const u0 = process.cpuUsage();
    for await (const b of fetchBlocks(client.request, { runtime: client.runtime, options: client.options })) {
      buf.set(b.data, b.offset);
      n += b.data.length;
    }
    const used = process.cpuUsage(u0);
    clientCpuUs += used.user + used.system;
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    return { ms, ok: n === MIB && sha256Hex(buf) === hash };
  } finally {
    await client.close();
  }
}

/**
 * Run `coapfw serve` under `--cpu-prof` while libcoap's client fetches the
 * file 10 times; summarise. Start-up and one warm-up fetch (JIT compiling)
 * are left out of the summary: they are not what a block costs.
 */
async function profileOurServer(files: string, work: string): Promise<unknown> {
  const profDir = join(work, 'prof');
  await mkdir(profDir);
  const spawned = performance.now();
  const server = await startOurServer(files, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  const fetch = (): Promise<unknown> => run(COAP_CLIENT, ['-m', 'get', '-b', '1024', `coap://127.0.0.1:${server.port}/files/${BIG}`, '-o', join(work, 'p.bin')], 60_000);
  let t0 = 0;
  let skipMs = 0;
  try {
    await fetch();
    skipMs = performance.now() - spawned;
    t0 = performance.now();
    for (let i = 0; i < 10; i++) await fetch();
    t0 = performance.now() - t0;
  } finally {
    await server.stop(); // SIGTERM: the server closes and exits normally, which writes the profile
  }
  const prof = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
  if (prof === undefined) return { error: 'no .cpuprofile written' };
  const summary = await summariseProfile(join(profDir, prof), 12, skipMs);
  // The samples after start-up and warm-up; the shutdown is in them too, so this is an upper bound per block.
  const busyUsPerBlock = round((summary.sampledMs * (100 - summary.idlePercent) * 10) / (10 * 1024));
  return { load: '10 x 1 MiB by coap-client-notls, 1024-byte blocks, after start-up and one warm-up fetch', loadWallMs: round(t0), skippedMs: round(skipMs), busyUsPerBlock, ...summary };
}

main().catch((e: unknown) => {
  killAll();
  process.stderr.write(`bench: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
