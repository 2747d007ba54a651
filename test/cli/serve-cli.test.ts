/**
 * `coapfw serve` as a process: the startup line and file changes (text and
 * --json), a port clash named as such with no fallback to IPv4, and a normal
 * DTLS close logged as close_notify, not as an alert.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { Code } from '../../src/codec/numbers.js';
import { openClient } from '../../src/client/open.js';
import { ipv6Available, UdpTransport } from '../../src/transport/udp.js';
import { captureIo } from '../helpers/cli-io.js';
import { runCli, type CliProcess } from './spawn-cli.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-serve-cli-'));
  await writeFile(join(dir, 'a.bin'), 'first file\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = (s: string): Record<string, unknown>[] => s.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

async function stop(p: CliProcess): Promise<number | null> {
  p.child.kill('SIGTERM');
  return (await p.done).code;
}

describe('coapfw serve', () => {
  it('prints the startup line, a line when the directory changes, and exits 0 on SIGTERM', { timeout: 30_000 }, async () => {
    const p = runCli(['serve', dir, '--host', '127.0.0.1', '--port', '0']);
    try {
      await p.waitFor((o) => o.includes('update service on'));
      expect(p.out()).toMatch(
        /^coapfw: serving 1 files from \S+ on coap:\/\/127\.0\.0\.1:\d+\ncoapfw: update service on sqlite:\S+\/\.coapfw\/fleet\.db \(sqlite\); no --trust: publishing is off; devices over plain CoAP too \(open registration: unauthenticated\)\n$/,
      );
      await writeFile(join(dir, 'b.bin'), 'second file\n');
      await p.waitFor((o) => o.includes('serving 2 files'));
      expect(p.out()).toMatch(/\ncoapfw: serving 2 files \(1 changed: b\.bin\)\n$/);
    } finally {
      expect(await stop(p)).toBe(0);
    }
  });

  it('--json: the startup line and the changes as JSON lines', { timeout: 30_000 }, async () => {
    const p = runCli(['serve', dir, '--host', '127.0.0.1', '--port', '0', '--json']);
    try {
      await p.waitFor((o) => o.includes('"listening"'));
      const [start] = lines(p.out());
      expect(start).toMatchObject({ event: 'listening', files: 2, urls: [expect.stringMatching(/^coap:\/\/127\.0\.0\.1:\d+$/)] });
      expect(start!.service).toEqual({ db: `sqlite:${join(dir, '.coapfw', 'fleet.db')}`, backend: 'sqlite', publishKeys: 0, openRegistration: true });
      expect(typeof start!.time).toBe('string');
      await rm(join(dir, 'b.bin'));
      await p.waitFor((o) => o.includes('"event":"files"'));
      expect(lines(p.out())[1]).toMatchObject({ event: 'files', files: 1, changed: ['b.bin'] });
    } finally {
      expect(await stop(p)).toBe(0);
    }
    expect(lines((await p.done).out).at(-1)).toMatchObject({ event: 'stopped' });
  });

  it('a port in use is named as such, and never hidden by a fallback to 0.0.0.0', async () => {
    const v6 = await ipv6Available();
    // Take the port on the address serve binds by default ([::] dual stack, or 0.0.0.0 without IPv6).
    const holder = await UdpTransport.bind({ host: v6 ? '::' : '0.0.0.0', port: 0 });
    const port = holder.address().port;
    try {
      const c = captureIo();
      expect(await main(['serve', dir, '--port', String(port)], c.io)).toBe(1);
      const where = v6 ? `\\[::\\]:${port}` : `0\\.0\\.0\\.0:${port}`;
      expect(c.err()).toMatch(new RegExp(`^coapfw serve: port ${port} is in use \\(binding ${where}\\): another server is running there; choose another with --port \\[ADDRESS_IN_USE\\]\\n$`));
    } finally {
      await holder.close();
    }
  });

  it('-v logs a DTLS session and its normal end as close_notify, not as an alert', { timeout: 30_000 }, async () => {
    const psk = join(dir, 'psk.txt');
    await writeFile(psk, 'dev-1 00112233445566778899aabbccddeeff\n');
    const p = runCli(['serve', dir, '--host', '127.0.0.1', '--no-coap', '--psk-file', psk, '--dtls-port', '0', '-v', '--json']);
    try {
      await p.waitFor((o) => o.includes('"listening"'));
      const url = (lines(p.out())[0]!.urls as string[])[0]!;
      const client = await openClient(`${url}/files/a.bin`, { psk: { identity: 'dev-1', key: '0x00112233445566778899aabbccddeeff' } });
      const res = await client.request({ code: Code.GET, options: client.options });
      expect(new TextDecoder().decode(res.payload)).toBe('first file\n');
      await client.close();
      await p.waitFor((o) => o.includes('"closed"'));
      const events = lines(p.out()).filter((e) => e.event === 'dtls');
      expect(events.map((e) => e.type)).toEqual(['established', 'closed']);
      expect(events[0]).toMatchObject({ identity: 'dev-1' });
      expect(events[1]).toMatchObject({ reason: 'peer closed the session (close_notify)' });
    } finally {
      expect(await stop(p)).toBe(0);
    }
  });
});
