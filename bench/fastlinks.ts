/**
 * `node dist/bench/fastlinks.js [--quick]`: transfers through the user-space
 * relay (bench/relay.ts) with delay, loss and a shared bottleneck, every
 * contender through the same relay settings in the same run, every transfer
 * checked by SHA-256. Prints JSON.
 *
 * Contenders:
 *   qblock2  the product: the `coapfw serve` process, and the library's public
 *            fetch (`fetchBody` through `openClient`, what `coapfw get` does)
 *            in this process, Q-Block2 (RFC 9177) with its congestion control
 *   block2   the same `coapfw serve` process and the Block2 client fetchBlocks
 *   libcoap  coap-client-notls -b 1024 from coap-server-notls (libcoap 4.3.1, Block2:
 *            its client never sends Q-Block2)
 *   tftp     tftp-hpa from in.tftpd (512-byte blocks, lock-step, RFC 1350)
 *
 * Scenarios (full; --quick shrinks sizes and device count, one run each):
 *   clean 1 MiB; 256 KiB at 20 ms RTT with 0, 5 and 20 % loss each way;
 *   1 MiB at 200 ms RTT; 50 devices x 256 KiB through one 1 Mbit/s bottleneck
 *   (64-packet drop-tail queue) at 5 % loss, with aggregate goodput and Jain's
 *   fairness index.
 *
 * `--only a,b` runs only the named scenarios, `--contenders a,b` only the
 * named contenders (for tuning one case; the JSON says which ran); `--runs N`
 * runs each N times with other loss seeds and reports the median run and
 * every run's time.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fetchBlocks } from '../src/blockwise/fetch.js';
import { fetchBody } from '../src/blockwise/fetch-body.js';
import { openClient } from '../src/client/open.js';
import { COAP_CLIENT, fixtureBytes, freeUdpPort, hasCommand, killAll, libcoapMissing, putToLibcoap, run, sha256File, sha256Hex, startDaemon, startLibcoapServer } from './procs.js';
import { UdpRelay, type RelayOptions } from './relay.js';

const QUICK = process.argv.includes('--quick');
const KIB = 1024;
const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = resolve(HERE, '../src/cli/bin.cjs');
const CAP_MS = QUICK ? 60_000 : 180_000;
/** `--only a,b` / `--contenders a,b`: a comma list after the flag, or undefined (all). */
function listArg(flag: string): string[] | undefined {
  const i = process.argv.indexOf(flag);
  return i < 0 ? undefined : (process.argv[i + 1] ?? '').split(',');
}
const ONLY = listArg('--only');
/** `--runs N`: each contender N times per scenario (other loss seeds); the row is the median run. */
const RUNS = Math.max(1, Number(listArg('--runs')?.[0] ?? 1) || 1);
const CONTENDERS = listArg('--contenders');

type Path = Omit<RelayOptions, 'target' | 'seed'>;
interface Scenario {
  readonly name: string;
  readonly size: number;
  readonly path: Path;
  readonly devices: number;
}

const SCENARIOS: Scenario[] = [
  { name: 'clean_loopback', size: (QUICK ? 256 : 1024) * KIB, path: {}, devices: 1 },
  { name: 'rtt20_loss0', size: (QUICK ? 64 : 256) * KIB, path: { rttMs: 20 }, devices: 1 },
  { name: 'rtt20_loss5', size: (QUICK ? 64 : 256) * KIB, path: { rttMs: 20, lossUp: 0.05, lossDown: 0.05 }, devices: 1 },
  { name: 'rtt20_loss20', size: (QUICK ? 64 : 256) * KIB, path: { rttMs: 20, lossUp: 0.2, lossDown: 0.2 }, devices: 1 },
  { name: 'rtt200', size: (QUICK ? 256 : 1024) * KIB, path: { rttMs: 200 }, devices: 1 },
  { name: 'shared_1mbit_loss5', size: (QUICK ? 32 : 256) * KIB, path: { rttMs: 20, lossUp: 0.05, lossDown: 0.05, rateBps: 1_000_000, queuePackets: 64 }, devices: QUICK ? 10 : 50 },
];

/** One transfer: ms to finish, whether the bytes were right. */
interface Timed {
  ms: number;
  ok: boolean;
}

type Contender = (relayPort: number, name: string, out: string, hash: string) => Promise<Timed>;

const round = (x: number): number => Math.round(x * 10) / 10;

async function timed(fn: () => Promise<boolean>): Promise<Timed> {
  const t0 = performance.now();
  let ok = false;
  try {
    ok = await fn();
  } catch {
    ok = false;
  }
  return { ms: performance.now() - t0, ok };
}

/** `fetchBody` (src/blockwise/fetch-body.ts) through `openClient`, as `coapfw get` opens it. */
function qblock2Contender(prefix: string): Contender {
  return (relayPort, name, _out, hash) =>
    timed(async () => {
      const client = await openClient(`coap://127.0.0.1:${relayPort}/${prefix}${name}`, { unreachable: 'fail' });
      try {
        let buf = new Uint8Array(0);
        const r = await fetchBody(client, {
          maxSize: 64 * 1024 * 1024,
          onBlock: (b) => {
            if (buf.length !== b.total) buf = new Uint8Array(b.total ?? 0);
            buf.set(b.data, b.offset);
          },
          signal: AbortSignal.timeout(CAP_MS),
        });
        return r.mode === 'qblock2' && sha256Hex(buf) === hash;
      } finally {
        await client.close();
      }
    });
}

function block2Contender(prefix: string): Contender {
  return (relayPort, name, _out, hash) =>
    timed(async () => {
      const client = await openClient(`coap://127.0.0.1:${relayPort}/${prefix}${name}`);
      try {
        const chunks: Uint8Array[] = [];
        const signal = AbortSignal.timeout(CAP_MS);
        for await (const b of fetchBlocks(client.request, { runtime: client.runtime, options: client.options, signal, retry: { attempts: 20 } })) chunks.push(b.data);
        const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
        let o = 0;
        for (const c of chunks) all.set(c, (o += c.length) - c.length);
        return sha256Hex(all) === hash;
      } finally {
        await client.close();
      }
    });
}

function commandContender(cmd: string, args: (port: number, name: string, out: string) => string[], cwd?: string): Contender {
  return (relayPort, name, out, hash) =>
    timed(async () => {
      await rm(out, { force: true });
      const r = await run(cmd, args(relayPort, name, out), CAP_MS, cwd);
      return !r.timedOut && (await sha256File(out)) === hash;
    });
}

/** Run `contender` for every device of `s` at once through a fresh relay to `target`. */
async function runScenario(s: Scenario, target: number, contender: Contender, name: string, hash: string, work: string, seed: number): Promise<{ runs: Timed[]; relay: UdpRelay['stats'] }> {
  const relay = await UdpRelay.start({ ...s.path, target: { address: '127.0.0.1', port: target }, seed });
  try {
    const runs = await Promise.all(Array.from({ length: s.devices }, (_, i) => contender(relay.port, name, join(work, `out-${seed}-${i}.bin`), hash)));
    return { runs, relay: relay.stats };
  } finally {
    await relay.close();
  }
}

/** Jain's fairness index of per-device throughputs: (sum x)^2 / (n sum x^2). */
function jain(xs: number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const sq = xs.reduce((a, b) => a + b * b, 0);
  return xs.length === 0 || sq === 0 ? 0 : (sum * sum) / (xs.length * sq);
}

function summarise(s: Scenario, r: { runs: Timed[]; relay: UdpRelay['stats'] }): Record<string, unknown> {
  const ok = r.runs.filter((t) => t.ok);
  const makespan = Math.max(...r.runs.map((t) => t.ms));
  const out: Record<string, unknown> = { ms: round(makespan), failures: r.runs.length - ok.length, relay: r.relay };
  if (s.devices > 1) {
    out.goodputBps = Math.round((ok.length * s.size * 8 * 1000) / makespan);
    if (s.path.rateBps) out.goodputOfBottleneck = Math.round(((ok.length * s.size * 8 * 1000) / makespan / s.path.rateBps) * 100) / 100;
    out.fairness = Math.round(jain(r.runs.map((t) => (t.ok ? s.size / t.ms : 0))) * 1000) / 1000;
  }
  return out;
}

/** The median run by time, with every run's time and failures beside it when there were several. */
function medianRun(runs: Record<string, unknown>[]): Record<string, unknown> {
  if (runs.length === 1) return runs[0]!;
  const sorted = [...runs].sort((a, b) => (a.ms as number) - (b.ms as number));
  const failures = runs.reduce((n, x) => n + (x.failures as number), 0);
  return { ...sorted[Math.floor(sorted.length / 2)]!, runsMs: runs.map((x) => x.ms), runFailures: failures };
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'coapfw-fast-'));
  const dir = join(work, 'files');
  await mkdir(dir);
  await chmod(work, 0o755);
  await chmod(dir, 0o755);
  const stops: Array<() => Promise<void>> = [];
  const result: Record<string, unknown> = { quick: QUICK, capMs: CAP_MS, node: process.version, only: ONLY, contenders: CONTENDERS, runs: RUNS };
  try {
    const files = new Map<string, Uint8Array>();
    for (const s of SCENARIOS) files.set(`f${s.size}.bin`, fixtureBytes(s.size, s.size + 3));
    for (const [n, b] of files) await writeFile(join(dir, n), b);
    const oursPort = await freeUdpPort();
    const ours = startDaemon(process.execPath, [CLI, 'serve', dir, '--host', '127.0.0.1', '--port', String(oursPort)]);
    stops.push(ours.stop);
    for (let i = 0; i < 100 && !ours.output().includes('serving'); i++) await new Promise((r) => setTimeout(r, 50));
    const contenders: Array<{ key: string; port: number; fn: Contender }> = [
      { key: 'qblock2', port: oursPort, fn: qblock2Contender('files/') },
      { key: 'block2', port: oursPort, fn: block2Contender('files/') },
    ];
    const want = (key: string): boolean => CONTENDERS === undefined || CONTENDERS.includes(key);
    if (want('libcoap') && libcoapMissing() === undefined) {
      const lc = await startLibcoapServer();
      stops.push(lc.stop);
      for (const n of files.keys()) await putToLibcoap(lc.uri(n), join(dir, n));
      contenders.push({ key: 'libcoap', port: lc.port, fn: commandContender(COAP_CLIENT, (p, n, o) => ['-m', 'get', '-B', String(CAP_MS / 1000), '-b', '1024', `coap://127.0.0.1:${p}/${n}`, '-o', o]) });
    }
    if (want('tftp') && hasCommand('in.tftpd', ['-V']) && hasCommand('tftp', ['-V'])) {
      const tp = await freeUdpPort();
      const d = startDaemon('in.tftpd', ['-L', '-s', dir, '-a', `127.0.0.1:${tp}`]);
      stops.push(d.stop);
      await new Promise((r) => setTimeout(r, 200));
      contenders.push({ key: 'tftp', port: tp, fn: commandContender('tftp', (p, n, o) => ['-m', 'binary', '127.0.0.1', String(p), '-c', 'get', n, o], work) });
    }
    const scenarios: Record<string, unknown> = {};
    let seed = 1;
    const chosen = contenders.filter((c) => want(c.key));
    for (const s of SCENARIOS.filter((x) => ONLY === undefined || ONLY.includes(x.name))) {
      const name = `f${s.size}.bin`;
      const hash = sha256Hex(files.get(name)!);
      const row: Record<string, unknown> = { bytes: s.size, devices: s.devices, path: s.path };
      const ms: Record<string, number> = {};
      for (const c of chosen) {
        process.stderr.write(`fastlinks: ${s.name} ${c.key} ...\n`);
        const runs: Record<string, unknown>[] = [];
        for (let k = 0; k < RUNS; k++) runs.push(summarise(s, await runScenario(s, c.port, c.fn, name, hash, work, seed + 1000 * k)));
        seed++;
        const r = medianRun(runs);
        row[c.key] = r;
        if (runs.every((x) => x.failures === 0)) ms[c.key] = r.ms as number;
      }
      // Ratios > 1: we are faster (time of the other / our time).
      const ratios: Record<string, number | null> = {};
      for (const ourKey of ['qblock2', 'block2']) {
        for (const other of ['libcoap', 'tftp']) {
          ratios[`${other}_over_${ourKey}`] = ms[ourKey] && ms[other] ? Math.round((ms[other] / ms[ourKey]) * 100) / 100 : null;
        }
      }
      row.speedup = ratios;
      scenarios[s.name] = row;
    }
    result.scenarios = scenarios;
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    killAll();
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((e: unknown) => {
  killAll();
  process.stderr.write(`fastlinks: ${(e as Error).stack ?? String(e)}\n`);
  process.exitCode = 1;
});
