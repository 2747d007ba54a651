/**
 * `coapfw serve --http` as a process, configured by a TOML file: the
 * operator token printed at first start only (kept 0600 in the state
 * directory), /metrics counting a CoAP transfer, -vv logging every request
 * as a JSON line, flags over the file, and an unknown key refused.
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { openClient } from '../../src/client/open.js';
import { Code } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import { captureIo } from '../helpers/cli-io.js';
import { runCli, type CliProcess } from '../cli/spawn-cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-serve-http-'));
  await writeFile(join(dir, 'fw.bin'), new Uint8Array(5000));
  await writeFile(
    join(dir, 'coapfw.toml'),
    `# served from the config file's directory
dir = "."
host = "127.0.0.1"
port = 0
http = "127.0.0.1:0"
state-dir = "state"
log-json = true
verbose = 2
`,
  );
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const lines = (s: string): Record<string, unknown>[] => s.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);

async function start(extra: string[] = []): Promise<{ p: CliProcess; http: string; coap: string; token: unknown }> {
  const p = runCli(['serve', '--config', join(dir, 'coapfw.toml'), ...extra], { cwd: tmpdir() });
  await p.waitFor((o) => o.includes('"event":"listening"') && o.includes('"event":"http"'));
  const events = lines(p.out());
  const http = events.find((e) => e.event === 'http')!;
  const listening = events.find((e) => e.event === 'listening')!;
  return { p, http: String(http.url), coap: (listening.urls as string[])[0]!, token: events.find((e) => e.event === 'token')?.token };
}

/** SIGTERM, then the exit: 0 expected; a signal or stderr is said in the failure. */
async function stop(p: CliProcess): Promise<number | null> {
  p.child.kill('SIGTERM');
  const { code, signal, err } = await p.done;
  if (code !== 0) process.stderr.write(`serve ended with code ${code}, signal ${signal}; stderr: ${err.slice(-2000)}\n`);
  return code;
}

describe('serve --http with --config', () => {
  it('prints the token once, serves /metrics, and logs every request at -vv as JSON', { timeout: 40_000 }, async () => {
    const first = await start();
    try {
      expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect((await stat(join(dir, 'state', 'http-token'))).mode & 0o777).toBe(0o600);
      const client = await openClient(`${first.coap}/`);
      try {
        expect((await client.request({ code: Code.GET, options: pathOptions('/files/fw.bin') })).code).toBe(Code.CONTENT);
      } finally {
        await client.close();
      }
      const metrics = await (await fetch(`${first.http}/metrics`)).text();
      expect(metrics).toMatch(/^coapfw_blocks_served_total 1$/m);
      expect(metrics).toMatch(/^coapfw_coap_responses_total\{transport="coap",code="2\.05"\} 1$/m);
      await first.p.waitFor((o) => o.includes('"event":"response"'));
      expect(lines(first.p.out()).find((e) => e.event === 'response')).toMatchObject({ level: 'debug', method: 1, path: '/files/fw.bin', code: 0x45 });
      // The default database (SQLite in DIR/.coapfw): an empty fleet.
      const api = await fetch(`${first.http}/api/summary`);
      expect(await api.json()).toMatchObject({ devices: 0, releases: 0, activeRollouts: 0 });
    } finally {
      expect(await stop(first.p)).toBe(0);
    }
    const second = await start(['--port', '0']);
    try {
      expect(second.token).toBeUndefined(); // printed at first start only
    } finally {
      expect(await stop(second.p)).toBe(0);
    }
  });

  it('refuses an unknown key, naming the one meant', async () => {
    const bad = join(dir, 'bad.toml');
    await writeFile(bad, 'dir = "."\nhttp-port = 8080\n');
    const c = captureIo();
    expect(await main(['serve', '--config', bad], c.io)).toBe(1);
    expect(c.err()).toMatch(/bad\.toml: http-port: unknown key \(did you mean [\w-]+\?\) \[CONFIG_INVALID\]/);
    await writeFile(bad, 'dir = "."\nport = "x"\necho = "yes"\n');
    const d = captureIo();
    expect(await main(['serve', '--config', bad], d.io)).toBe(1);
    expect(d.err()).toMatch(/echo: expected true or false/);
  });
});
