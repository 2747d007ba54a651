/**
 * Multicast discovery on a real link: `coapfw gateway` in one network
 * namespace, `coapfw discover` in another, a veth pair between them (made
 * here, removed after). The gateway answers on 224.0.1.187 and ff02::fd; a
 * filter that matches nothing draws no answer at all, by either family (so
 * the copy of the multicast datagram that Linux also hands the gateway's
 * unicast socket is not answered by the unicast rules either).
 *
 * Skipped with the reason in its name where namespaces cannot be made;
 * under CI=true that is a failure instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeNetnsPair, netnsUnavailable, type NetnsPair } from './netns.js';

const CLI = resolve('dist/src/cli/bin.js');
const missing = await netnsUnavailable();

function inNs(ns: string, args: string[]): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, process.execPath, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

function collect(child: ChildProcess): { out: () => string; err: () => string; exit: Promise<number | null> } {
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (err += d));
  const exit = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  return { out: () => out, err: () => err, exit };
}

async function discover(ns: string, ...args: string[]): Promise<{ code: number | null; lines: Array<Record<string, unknown>>; err: string }> {
  const c = collect(inNs(ns, ['discover', '--json', '--timeout', '2', ...args]));
  const timer = setTimeout(() => undefined, 0);
  const code = await c.exit;
  clearTimeout(timer);
  return { code, lines: c.out().trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>), err: c.err() };
}

const suite = missing === undefined ? describe : process.env.CI ? describe : describe.skip;
suite(`multicast discovery between network namespaces${missing && !process.env.CI ? ` [skipped: ${missing}]` : ''}`, () => {
  let pair: NetnsPair;
  let gateway: ChildProcess;
  let log: ReturnType<typeof collect>;
  let dir: string;

  beforeAll(async () => {
    if (missing !== undefined) throw new Error(`discovery test cannot run under CI: ${missing}`);
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
    dir = await mkdtemp(join(tmpdir(), 'coapfw-netns-'));
    pair = await makeNetnsPair('d');
    gateway = inNs(pair.a, ['gateway', '--upstream', 'coap://127.0.0.1:9', '--cache', dir, '--leisure', '300', '--json', '-v']);
    log = collect(gateway);
    for (let i = 0; i < 200 && !log.out().includes('"event":"listening"'); i++) await new Promise((r) => setTimeout(r, 50));
    if (!log.out().includes('"event":"listening"')) throw new Error(`the gateway did not start: ${log.err()}`);
  });

  afterAll(async () => {
    // Kill the node process itself: SIGKILL of the `ip netns exec` wrapper would leave it running.
    gateway?.kill('SIGTERM');
    await log?.exit;
    await pair?.remove();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the gateway joined the All-CoAP-Nodes groups on its link', () => {
    const listening = JSON.parse(log.out().split('\n').find((l) => l.includes('"event":"listening"'))!) as { memberships: number };
    expect(listening.memberships).toBe(3); // 224.0.1.187, ff02::fd and ff05::fd on the veth
  });

  it('coapfw discover in the other namespace finds it over IPv4 and IPv6, with its service links', async () => {
    const r = await discover(pair.b);
    expect(r.code, r.err).toBe(0);
    const addresses = r.lines.map((l) => l.address as string).sort();
    expect(addresses).toHaveLength(2);
    expect(addresses[0]).toBe(pair.addrA);
    expect(addresses[1]).toMatch(new RegExp(`^fe80::.*%${pair.ifB}$`));
    for (const l of r.lines) {
      expect(l.port).toBe(5683);
      expect((l.links as Array<{ target: string }>).map((x) => x.target)).toEqual(['/m', '/fw/sha256']);
    }
    expect(r.lines.find((l) => l.address === pair.addrA)!.uri).toBe(`coap://${pair.addrA}`); // the default port is left out
  });

  it('is silent for a filter that matches nothing, on both families', async () => {
    const r = await discover(pair.b, '--query', 'rt=toaster');
    expect(r.code).toBe(1);
    expect(r.lines).toEqual([]);
    expect(r.err).toMatch(/no server answered rt=toaster/);
  });

  it('logged each answer it gave (-v)', () => {
    expect(log.out()).toMatch(/"event":"discovery","answered":true/);
    expect(log.out()).toMatch(/"event":"discovery","answered":false/);
  });
});
