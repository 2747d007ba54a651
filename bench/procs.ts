/**
 * Process and fixture helpers shared by the benchmark and the interop tests:
 * running a child with a hard time bound, starting libcoap's server, making
 * fixture files and hashing them. No test-runner imports, so that
 * `node dist/bench/run.js` can use it.
 *
 * Every child started here is tracked; {@link killAll} ends the ones still
 * running, so nothing is left behind.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';

/** libcoap's plain-UDP command-line tools (Debian package libcoap3-bin). */
export const COAP_CLIENT = 'coap-client-notls';
export const COAP_SERVER = 'coap-server-notls';

/** Whether a command can be started at all. */
export function hasCommand(cmd: string, args: readonly string[] = ['-h']): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', timeout: 5000 });
  return r.error === undefined;
}

/** Why libcoap interop cannot run here, or undefined when it can. */
export function libcoapMissing(): string | undefined {
  const missing = [COAP_CLIENT, COAP_SERVER].filter((c) => !hasCommand(c));
  return missing.length === 0 ? undefined : `${missing.join(' and ')} not found (apt-get install libcoap3-bin)`;
}

/** What a finished child did. */
export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

const children = new Set<ChildProcess>();

/** Run `cmd` to completion, killing it after `timeoutMs`. Never rejects. */
export function run(cmd: string, args: readonly string[], timeoutMs = 30_000, cwd?: string, env?: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd, env });
    children.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut });
    };
    child.on('error', (e) => {
      stderr += String(e);
      finish(null, null);
    });
    child.on('close', finish);
  });
}

/** Start a long-running child (a server); it is killed by {@link killAll} or by `stop()`. */
export function startDaemon(cmd: string, args: readonly string[], cwd?: string, env?: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd, env: env ?? process.env });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
  child.on('error', () => {});
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(t);
      children.delete(child);
    },
  };
}

/** Kill every child still running (for afterAll). */
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
}

/** A UDP port that was free a moment ago on `host` (for servers that cannot bind port 0). */
export function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Lower-case hex SHA-256. */
export function sha256Hex(data: Uint8Array): string {
  return bytesToHex(sha256(data));
}

/** SHA-256 of a file, or `missing` when it does not exist. */
export async function sha256File(path: string): Promise<string> {
  try {
    return sha256Hex(await readFile(path));
  } catch {
    return 'missing';
  }
}

/** Deterministic pseudo-random bytes (xorshift32): reproducible fixtures without a hashing shortcut. */
export function fixtureBytes(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** A temporary directory holding fixture files `f<size>.bin`; returns their hashes. */
export async function makeFixtureDir(sizes: readonly number[], prefix = 'coapfw-interop-'): Promise<{ dir: string; hashes: Map<number, string>; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const hashes = new Map<number, string>();
  for (const size of sizes) {
    const bytes = fixtureBytes(size, size + 1);
    await writeFile(join(dir, fixtureName(size)), bytes);
    hashes.set(size, sha256Hex(bytes));
  }
  return { dir, hashes, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** File name of the fixture of `size` bytes. */
export function fixtureName(size: number): string {
  return `f${size}.bin`;
}

/** Run `tasks` with at most `n` running at once; results in task order. */
export async function inBatches<T>(tasks: ReadonlyArray<() => Promise<T>>, n: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, worker));
  return results;
}

/**
 * Start libcoap's server (`coap-server-notls -A host -p port -d 10`: up to 10
 * resources created by PUT, then `extraArgs`, e.g. `-L 5`) and wait until it
 * answers a GET.
 */
export async function startLibcoapServer(host = '127.0.0.1', extraArgs: readonly string[] = []): Promise<{ port: number; pid: number | undefined; uri: (path: string) => string; stop: () => Promise<void> }> {
  const port = await freeUdpPort(host);
  const daemon = startDaemon(COAP_SERVER, ['-A', host, '-p', String(port), '-d', '10', ...extraArgs]);
  const base = host.includes(':') ? `coap://[${host}]:${port}` : `coap://${host}:${port}`;
  for (let i = 0; i < 50; i++) {
    const r = await run(COAP_CLIENT, ['-B', '1', '-m', 'get', `${base}/.well-known/core`], 3000);
    if (r.stdout.includes('</')) return { port, pid: daemon.child.pid, uri: (p) => `${base}/${p}`, stop: daemon.stop };
    if (daemon.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await daemon.stop();
  throw new Error(`coap-server-notls did not come up on ${base}: ${daemon.output().slice(0, 300)}`);
}

/** PUT `file` to libcoap's server at `uri` (block-wise when larger than `blockSize`). */
export async function putToLibcoap(uri: string, file: string, blockSize = 1024): Promise<RunResult> {
  return run(COAP_CLIENT, ['-m', 'put', '-b', String(blockSize), '-f', file, uri], 60_000);
}

let clockTicks: number | undefined;

/**
 * CPU time (user + system) a process has used so far, in milliseconds, from
 * `/proc/PID/stat` (Linux); undefined where that is not available. Resolution
 * is one clock tick (usually 10 ms): measure over many requests.
 */
export function processCpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    clockTicks ??= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
    // Fields 14 and 15 of stat(5) (utime, stime), counted after "pid (comm) ".
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
  } catch {
    return undefined;
  }
}
