/**
 * Ctrl-C during `coapfw get`, on the real process: in a terminal (under
 * `script`, so the '\x03' goes through the line discipline as a user's key
 * press) and as a plain SIGTERM. The bar line is ended, a message says what
 * was kept, the exit code is 130 (143 for SIGTERM), and --resume continues.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { ImpairedTransport } from '../../src/transport/impaired.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { inTerminal, runCli } from './spawn-cli.js';

let dir: string;
let server: FileServer;
let uri: string;
const data = Uint8Array.from({ length: 256 * 1024 }, (_, i) => (i * 31 + (i >> 10)) & 0xff);

beforeAll(async () => {
  // util-linux `script` gives the process a terminal; it is part of every Debian system.
  expect(spawnSync('script', ['--version']).error, 'script(1) from util-linux is needed').toBeUndefined();
  dir = await mkdtemp(join(tmpdir(), 'coapfw-get-sig-'));
  await writeFile(join(dir, 'fw.bin'), data);
  // 256 blocks, each answered 10 ms late: several seconds, so the signal lands mid-transfer.
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  server = await startFileServer({ dir, transport: new ImpairedTransport(udp, { delayMs: 10 }), refreshMs: 0 });
  uri = `coap://127.0.0.1:${server.address().port}/files/fw.bin`;
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

const partSize = (file: string): number => (existsSync(`${file}.part`) ? statSync(`${file}.part`).size : 0);

describe('interrupting coapfw get', () => {
  it('Ctrl-C in a terminal: bar line ended, message, exit 130, part kept; --resume finishes', { timeout: 60_000 }, async () => {
    const out = join(dir, 'tty.bin');
    const p = inTerminal(['get', uri, '-o', out]);
    await p.waitFor((o) => /tty\.bin \[[#.]+\] +\d+% /.test(o));
    await p.waitFor(() => partSize(out) > 8 * 1024);
    p.child.stdin!.write('\x03');
    const r = await p.done;
    expect(r.code, r.out).toBe(130);
    // The last bar frame, then the line ends before the message (the terminal echoes ^C).
    expect(r.out).toMatch(/tty\.bin \[[#.]+\] +\d+% [^\r\n]*\x1b\[K(\^C)?\r?\n/);
    expect(r.out).toMatch(/\r?\ncoapfw get: interrupted by SIGINT: [\d.]+ KiB kept in \S+tty\.bin\.part; run the same command with --resume to continue\r?\n$/);
    const kept = partSize(out);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(data.length);
    const again = await runCli(['get', uri, '-o', out, '--resume']).done;
    expect(again.code, again.err).toBe(0);
    expect(again.err).toMatch(/ \((Q-Block2; )?resumed with \d+ bytes held\)\n$/);
    expect(new Uint8Array(await readFile(out))).toEqual(data);
    expect(existsSync(`${out}.part`)).toBe(false);
  });

  it('SIGTERM without a terminal: exit 143, one message line, part kept', { timeout: 60_000 }, async () => {
    const out = join(dir, 'term.bin');
    const p = runCli(['get', uri, '-o', out]);
    await p.waitFor(() => partSize(out) > 8 * 1024);
    p.child.kill('SIGTERM');
    const r = await p.done;
    expect(r.code).toBe(143);
    expect(r.err).toMatch(/^coapfw get: interrupted by SIGTERM: [\d.]+ KiB kept in \S+term\.bin\.part; run the same command with --resume to continue\n$/);
    expect(partSize(out)).toBeGreaterThan(0);
  });
});
