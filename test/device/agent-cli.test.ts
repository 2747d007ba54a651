/**
 * `coapfw device run` as a real process against the real update server
 * (in this process, SQLite, loopback): it registers, updates when told,
 * survives a SIGKILL mid-download (the next run resumes from the journal and
 * continues the report counter from the registration answer), and stops
 * cleanly on SIGTERM. Usage errors are caught before the flash file exists.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliProcess } from '../cli/spawn-cli.js';
import { SqliteHarness } from '../service/harness.js';
import { CLASS, VENDOR, bytes } from '../service/fixtures.js';
import { eventually, publishOver, SIGNER, signedRelease, startService, type Service } from '../service/service-harness.js';

const h = new SqliteHarness();
let svc: Service;
let dir: string;
const procs: CliProcess[] = [];

beforeAll(async () => {
  svc = await startService(h, { pollS: 2 });
  dir = await mkdtemp(join(tmpdir(), 'coapfw-run-'));
  await writeFile(join(dir, 'oem.pub'), bytesToHex(SIGNER.publicKey.bytes));
});
afterAll(async () => {
  for (const p of procs) p.child.kill('SIGKILL');
  await svc?.close();
  await h.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function run(flash: string, mode: string, extra: string[] = []): CliProcess {
  const p = runCli(['device', 'run', '--flash', join(dir, flash), '--server', svc.coapUrl, '--trust', join(dir, 'oem.pub'), '--vendor-id', VENDOR, '--class-id', CLASS, '--mode', mode, '--json', ...extra]);
  procs.push(p);
  return p;
}

/** The JSON events a run printed. */
function events(p: CliProcess): Record<string, unknown>[] {
  return p
    .out()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('coapfw device run', () => {
  it('refuses a missing --mode, an unknown mode and --defer outside negotiated mode before touching the flash', async () => {
    for (const [args, msg] of [
      [[], /--mode is required/],
      [['--mode', 'push'], /--mode must be one of client, server, negotiated/],
      [['--mode', 'server', '--defer', '5'], /--defer is for --mode negotiated/],
    ] as const) {
      const r = await runCli(['device', 'run', '--flash', join(dir, 'never.bin'), '--server', svc.coapUrl, '--trust', join(dir, 'oem.pub'), '--vendor-id', VENDOR, '--class-id', CLASS, ...args]).done;
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
    }
    expect(existsSync(join(dir, 'never.bin'))).toBe(false);
  });

  it('updates when the server says so, resumes after a SIGKILL mid-download, and stops on SIGTERM with 143', { timeout: 90_000 }, async () => {
    const store = svc.server.store;
    // A power cut half-way through the download: the process SIGKILLs itself at that flash operation.
    const first = run('cam.bin', 'server', ['--device-id', 'cam-1', '--crash-after-ops', '60']);
    await eventually(async () => ((await store.getDevice('cam-1')) ? true : undefined), 15_000, 'registration');
    const r = signedRelease(1, SIGNER, bytes(200_000, 3));
    expect((await publishOver(await svc.secure('publisher'), r, { urgency: 'critical', downtime: 20 })).release.code).toBe(0x41);
    const killed = await first.done;
    expect(killed.signal).toBe('SIGKILL');
    const before = events(first);
    expect(before.find((e) => e.event === 'downtime')).toMatchObject({ seq: 1, seconds: 20 });
    expect(before.some((e) => e.event === 'report' && (e.outcome as { report?: { state?: string } }).report?.state === 'downloading')).toBe(true);

    const second = run('cam.bin', 'server', ['--device-id', 'cam-1']);
    await eventually(async () => ((await store.getDevice('cam-1'))?.state === 'confirmed' ? true : undefined), 60_000, 'confirmed after the restart');
    await second.waitFor((out) => out.includes('"state":"confirmed"'), 10_000);
    const end = events(second).find((e) => e.event === 'update-end') as { status: { result: string; blocksResumed: number } };
    expect(end.status.result).toBe('installed');
    expect(end.status.blocksResumed).toBeGreaterThan(0);
    const history = (await store.listHistory('cam-1')).reverse();
    const counters = history.flatMap((e) => (e.reportSeq === undefined ? [] : [e.reportSeq]));
    expect(counters).toEqual(counters.map((_c, i) => i + 1)); // continued across the kill, nothing lost or repeated
    expect(history.filter((e) => e.transition === 'registered').length).toBeGreaterThanOrEqual(2);
    expect((await store.getDevice('cam-1'))!.installedSeq).toBe(1);

    second.child.kill('SIGTERM');
    const stopped = await second.done;
    expect(stopped.code).toBe(143);
    expect(stopped.err).toMatch(/SIGTERM: stopping/);
  });
});
