/**
 * `node dist/bench/get-cli.js [--reps N]`: the real `coapfw get` process, as a
 * user runs it, against `coapfw serve`, beside libcoap's client against
 * libcoap's server and against ours, 1 MiB and a one-block file, on loopback:
 *
 *   getBlock2     coapfw get --no-qblock2  <- coapfw serve  (RFC 7959, one request in flight)
 *   getQBlock2    coapfw get               <- coapfw serve  (Q-Block2, RFC 9177: the default)
 *   libcoapOurs   coap-client-notls -b 1024 <- coapfw serve
 *   libcoapPair   coap-client-notls -b 1024 <- coap-server-notls -d (the file PUT first)
 *   nodeBare      `node -e 0`: the floor under any Node command's start-up
 *
 * Runs are interleaved (every scenario once per round, BENCH_REPS or --reps
 * rounds, default 7) so machine noise hits all alike; medians are reported.
 * `coapfw get` is the package's command, dist/src/cli/bin.cjs, which runs
 * the get bundle from its code cache; one untimed get makes that cache first.
 * Every output is checked by SHA-256. The one-block run is the start-up;
 * `netBlocksPerSec` is (blocks - 1) / (time - one-block time), the transfer
 * without the process start. The client's CPU time (user + system) comes
 * from its rusage as `/usr/bin/time -f` reports it when the child is reaped
 * (10 ms resolution: the per-block figure is net of the one-block run and
 * divided by 1023 blocks); without /usr/bin/time the CPU fields are null.
 *
 * The clients run without NODE_EXTRA_CA_CERTS (`childEnv` in the JSON says
 * so when it was set): Node 20 parses that whole certificate file before
 * running any script, 65-70 ms with Debian's bundle on this machine, for
 * `node -e 0` and `coapfw get` alike, and neither uses TLS. Sandboxes set
 * it; a lab machine does not, and a figure for start-up with it would
 * measure the file, not the command.
 */
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COAP_CLIENT, fixtureBytes, freeUdpPort, killAll, libcoapMissing, putToLibcoap, run, sha256File, sha256Hex, startDaemon, startLibcoapServer } from './procs.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const CLI = resolve(HERE, '../src/cli/bin.cjs');
const BIG = 'big.bin';
const ONE = 'one.bin';
const MIB = 1024 * 1024;
const BLOCKS = MIB / 1024;
const argReps = process.argv.indexOf('--reps');
const REPS = Math.max(1, Number(argReps > 0 ? process.argv[argReps + 1] : (process.env.BENCH_REPS ?? 7)));
const TIME = '/usr/bin/time';
const HAS_TIME = spawnSync(TIME, ['-f', '%e', 'true'], { stdio: 'ignore' }).status === 0;

/** One run of a client: wall time (ms, as the parent sees it), CPU (ms, the child's rusage), and whether the bytes were right. */
interface Timed {
  ms: number;
  cpuMs: number | null;
  ok: boolean;
}

/** Run `cmd args` (under /usr/bin/time when there is one) and check `out` against `hash`. */
const CHILD_ENV: NodeJS.ProcessEnv = { ...process.env };
delete CHILD_ENV.NODE_EXTRA_CA_CERTS;

async function timed(cmd: string, args: string[], out: string, hash: string, work: string): Promise<Timed> {
  await rm(out, { force: true });
  const rusage = join(work, 'rusage.txt');
  const argv = HAS_TIME ? ['-f', '%U %S', '-o', rusage, cmd, ...args] : args;
  const t0 = process.hrtime.bigint();
  const r = await run(HAS_TIME ? TIME : cmd, argv, 120_000, work, CHILD_ENV);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  let cpuMs: number | null = null;
  if (HAS_TIME) {
    const [u, s] = (await readFile(rusage, 'utf8')).trim().split('\n').pop()!.split(' ').map(Number);
    cpuMs = Number.isFinite(u) && Number.isFinite(s) ? Math.round((u! + s!) * 1000) : null;
  }
  const ok = r.code === 0 && !r.timedOut && (hash === '' || (await sha256File(out)) === hash);
  return { ms, cpuMs, ok };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const round = (x: number, places = 1): number => Math.round(x * 10 ** places) / 10 ** places;

/** The medians of one client-server pair. */
interface PairResult {
  medianMs: number;
  medianOneBlockMs: number;
  blocksPerSec: number;
  netBlocksPerSec: number | null;
  clientCpuMs: number | null;
  clientCpuOneBlockMs: number | null;
  /** (CPU of the 1 MiB run - CPU of the one-block run) / 1023 blocks. */
  clientCpuUsPerBlock: number | null;
  failures: number;
}

function summarise(big: Timed[], one: Timed[]): PairResult {
  const ms = median(big.map((t) => t.ms));
  const oneMs = median(one.map((t) => t.ms));
  const cpu = big.every((t) => t.cpuMs !== null) ? median(big.map((t) => t.cpuMs!)) : null;
  const cpuOne = one.every((t) => t.cpuMs !== null) ? median(one.map((t) => t.cpuMs!)) : null;
  return {
    medianMs: round(ms),
    medianOneBlockMs: round(oneMs),
    blocksPerSec: Math.round(BLOCKS / (ms / 1000)),
    netBlocksPerSec: ms > oneMs ? Math.round((BLOCKS - 1) / ((ms - oneMs) / 1000)) : null,
    clientCpuMs: cpu === null ? null : round(cpu),
    clientCpuOneBlockMs: cpuOne === null ? null : round(cpuOne),
    clientCpuUsPerBlock: cpu !== null && cpuOne !== null ? round(((cpu - cpuOne) * 1000) / (BLOCKS - 1)) : null,
    failures: [...big, ...one].filter((t) => !t.ok).length,
  };
}

/** Start `coapfw serve DIR` and wait until it says it is serving. */
async function startOurs(dir: string): Promise<{ uri: (f: string) => string; stop: () => Promise<void> }> {
  const port = await freeUdpPort();
  const d = startDaemon(process.execPath, [CLI, 'serve', dir, '--host', '127.0.0.1', '--port', String(port)]);
  for (let i = 0; i < 200 && !d.output().includes('serving'); i++) await new Promise((r) => setTimeout(r, 50));
  if (!d.output().includes('serving')) {
    await d.stop();
    throw new Error(`coapfw serve did not start: ${d.output().slice(0, 300)}`);
  }
  return { uri: (f) => `coap://127.0.0.1:${port}/files/${f}`, stop: d.stop };
}

type Client = (uri: string, out: string, hash: string) => Promise<Timed>;

async function main(): Promise<void> {
  const missing = libcoapMissing();
  const work = await mkdtemp(join(tmpdir(), 'coapfw-bench-get-'));
  const files = join(work, 'files');
  await mkdir(files);
  const big = fixtureBytes(MIB, 11);
  const one = fixtureBytes(500, 12);
  await writeFile(join(files, BIG), big);
  await writeFile(join(files, ONE), one);
  const hash = { [BIG]: sha256Hex(big), [ONE]: sha256Hex(one) };
  const stops: Array<() => Promise<void>> = [];
  const result: Record<string, unknown> = { node: process.version, repetitions: REPS, file: { bytes: MIB, blockSize: 1024, oneBlockBytes: 500 }, cpuFrom: HAS_TIME ? '/usr/bin/time -f "%U %S" (the child\'s rusage)' : null, childEnv: process.env.NODE_EXTRA_CA_CERTS === undefined ? 'as the parent' : 'as the parent, without NODE_EXTRA_CA_CERTS' };
  try {
    const ours = await startOurs(files);
    stops.push(ours.stop);
    const get = (extra: string[]): Client => (uri, out, h) => timed(process.execPath, [CLI, 'get', ...extra, uri, '-o', out], out, h, work);
    const libcoap: Client = (uri, out, h) => timed(COAP_CLIENT, ['-m', 'get', '-B', '60', '-b', '1024', uri, '-o', out], out, h, work);
    const pairs: Record<string, { client: Client; uri: (f: string) => string }> = {
      getBlock2: { client: get(['--no-qblock2']), uri: ours.uri },
      getQBlock2: { client: get([]), uri: ours.uri },
    };
    if (missing === undefined) {
      const lc = await startLibcoapServer();
      stops.push(lc.stop);
      for (const f of [BIG, ONE]) {
        const put = await putToLibcoap(lc.uri(f), join(files, f));
        if (put.code !== 0) throw new Error(`PUT ${f} to coap-server-notls failed: ${put.stderr}`);
      }
      pairs.libcoapOurs = { client: libcoap, uri: ours.uri };
      pairs.libcoapPair = { client: libcoap, uri: lc.uri };
    } else {
      result.skipped = { libcoap: missing };
    }
    // One untimed get first: it makes the bundle's V8 code cache (src/cli/bin.cts), as a user's first get does.
    await pairs.getQBlock2!.client(ours.uri(ONE), join(work, 'warm.one'), hash[ONE]!);
    result.codeCache = 'made by one untimed get before the runs (a user\'s first get makes it)';
    const runs = new Map<string, { big: Timed[]; one: Timed[] }>(Object.keys(pairs).map((k) => [k, { big: [], one: [] }]));
    const bare: Timed[] = [];
    for (let i = 0; i < REPS; i++) {
      bare.push(await timed(process.execPath, ['-e', '0'], join(work, 'none'), '', work));
      for (const [name, p] of Object.entries(pairs)) {
        const r = runs.get(name)!;
        r.big.push(await p.client(p.uri(BIG), join(work, `${name}.big`), hash[BIG]!));
        r.one.push(await p.client(p.uri(ONE), join(work, `${name}.one`), hash[ONE]!));
      }
    }
    const out: Record<string, PairResult> = {};
    for (const [name, r] of runs) out[name] = summarise(r.big, r.one);
    result.pairs = out;
    result.nodeBare = { medianMs: round(median(bare.map((t) => t.ms))), cpuMs: bare.every((t) => t.cpuMs !== null) ? round(median(bare.map((t) => t.cpuMs!))) : null };
    result.ratios = ratios(out);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => {});
    killAll();
    await rm(work, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/** Ours over libcoap's pair (> 1: ours is faster), and CPU per block (< 1: ours is cheaper). */
function ratios(p: Record<string, PairResult>): Record<string, number | null> {
  const base = p.libcoapPair;
  if (base === undefined) return {};
  const over = (a: number | null | undefined, b: number | null | undefined): number | null => (a && b ? round(a / b, 2) : null);
  return {
    getBlock2_over_libcoapPair_wall: over(p.getBlock2!.blocksPerSec, base.blocksPerSec),
    getBlock2_over_libcoapPair_net: over(p.getBlock2!.netBlocksPerSec, base.netBlocksPerSec),
    getQBlock2_over_libcoapPair_wall: over(p.getQBlock2!.blocksPerSec, base.blocksPerSec),
    getQBlock2_over_libcoapPair_net: over(p.getQBlock2!.netBlocksPerSec, base.netBlocksPerSec),
    libcoapOurs_over_libcoapPair_net: over(p.libcoapOurs?.netBlocksPerSec, base.netBlocksPerSec),
    getBlock2_cpuPerBlock_over_libcoapClient: over(p.getBlock2!.clientCpuUsPerBlock, base.clientCpuUsPerBlock),
    getQBlock2_cpuPerBlock_over_libcoapClient: over(p.getQBlock2!.clientCpuUsPerBlock, base.clientCpuUsPerBlock),
  };
}

await main();
