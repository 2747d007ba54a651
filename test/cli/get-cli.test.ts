/**
 * `coapfw get` as tftp and coap-client users judge it, in-process on
 * loopback: no server (ICMP port unreachable fails at once), a silent server
 * (a note on the terminal, --timeout), no empty part file, `-o -`, `-o DIR`,
 * a FIFO, --json, and --resume with another --block-size.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { ImpairedTransport } from '../../src/transport/impaired.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { captureIo } from '../helpers/cli-io.js';

let dir: string;
let server: FileServer;
let slow: FileServer;
let base: string;
const text = 'coapfw get test data\n'.repeat(500); // 10,500 bytes of text: readable on a captured stdout
const big = Uint8Array.from({ length: 100 * 1024 }, (_, i) => (i * 13) & 0xff);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-get-'));
  await mkdir(join(dir, 'srv'));
  await writeFile(join(dir, 'srv', 'fw.txt'), text);
  await writeFile(join(dir, 'srv', 'big.bin'), big);
  server = await startFileServer({ dir: join(dir, 'srv'), host: '127.0.0.1', port: 0, refreshMs: 0 });
  base = `coap://127.0.0.1:${server.address().port}/files`;
  // 100 blocks, each answered 20 ms late: about 2 s for the whole file.
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  slow = await startFileServer({ dir: join(dir, 'srv'), transport: new ImpairedTransport(udp, { delayMs: 20 }), refreshMs: 0 });
});
afterAll(async () => {
  await server?.close();
  await slow?.close();
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[], io = captureIo()) {
  const started = performance.now();
  const code = await main(['get', ...args], io.io);
  return { code, out: io.out(), err: io.err(), ms: performance.now() - started };
}

/** A UDP port with nothing on it (bound, then closed). */
async function closedPort(host = '127.0.0.1'): Promise<number> {
  const t = await UdpTransport.bind({ host, port: 0 });
  const port = t.address().port;
  await t.close();
  return port;
}

/** A socket that receives and never answers (no ICMP either), counting datagrams. */
async function silentServer(): Promise<{ port: number; received: () => number; close: () => Promise<void> }> {
  const t = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  let n = 0;
  t.onMessage(() => void n++);
  return { port: t.address().port, received: () => n, close: () => t.close() };
}

async function filesIn(d: string): Promise<string[]> {
  return (await readdir(d)).sort();
}

describe('coapfw get without a server', () => {
  it('fails at once on ICMP port unreachable, naming the URI, and leaves no file', { timeout: 20_000 }, async () => {
    const out = await mkdtemp(join(dir, 'icmp-'));
    const uri = `coap://127.0.0.1:${await closedPort()}/files/x.img`;
    const r = await run([uri, '-o', join(out, 'x.img')]);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(5000);
    expect(r.err).toMatch(new RegExp(`^coapfw get: ${uri.replaceAll('.', '\\.')}: nothing listens on 127\\.0\\.0\\.1:\\d+ \\(ICMP port unreachable\\) \\[UNREACHABLE\\]\\n$`));
    expect(await filesIn(out)).toEqual([]);
  });

  it('fails at once over IPv6 too', { timeout: 20_000 }, async () => {
    const out = await mkdtemp(join(dir, 'icmp6-'));
    const r = await run([`coap://[::1]:${await closedPort('::1')}/x.img`, '-o', join(out, 'x.img')]);
    expect(r.code).toBe(1);
    expect(r.ms).toBeLessThan(5000);
    expect(r.err).toMatch(/nothing listens on \[::1\]:\d+ \(ICMP port unreachable\) \[UNREACHABLE\]/);
    expect(await filesIn(out)).toEqual([]);
  });

  it('a silent server: a note on the terminal while waiting, then --timeout ends it (exit 1), no part file', { timeout: 20_000 }, async () => {
    const silent = await silentServer();
    const out = await mkdtemp(join(dir, 'silent-'));
    const stderr = Object.assign(new PassThrough(), { isTTY: true, columns: 100 });
    let err = '';
    stderr.on('data', (d) => (err += d));
    try {
      const io = { io: { stdout: new PassThrough(), stderr }, out: () => '', err: () => err };
      const r = await run([`coap://127.0.0.1:${silent.port}/files/x.img`, '-o', join(out, 'x.img'), '--timeout', '3.5'], io);
      expect(r.code).toBe(1);
      expect(r.ms).toBeGreaterThan(3000);
      expect(r.ms).toBeLessThan(8000);
      expect(err).toContain(`\rx.img: waiting for 127.0.0.1:${silent.port} … 2 s without an answer\x1b[K`);
      expect(err).toContain(`\rx.img: waiting for 127.0.0.1:${silent.port} … 3 s without an answer\x1b[K`);
      expect(err).toMatch(/\x1b\[K\ncoapfw get: coap:\/\/\S+: not complete within --timeout 3\.5 s; nothing was written \[TIMEOUT\]\n$/);
      expect(silent.received()).toBeGreaterThan(0);
      expect(await filesIn(out)).toEqual([]);
    } finally {
      await silent.close();
    }
  });
});

describe('coapfw get outputs', () => {
  it('a 4.04 leaves no part file, and --json says so in one line', async () => {
    const out = await mkdtemp(join(dir, 'nf-'));
    const r = await run([`${base}/nope.img`, '-o', join(out, 'nope.img'), '--json']);
    expect(r.code).toBe(1);
    expect(await filesIn(out)).toEqual([]);
    const j = JSON.parse(r.out) as { result: string; error: { code: string; message: string } };
    expect(j).toMatchObject({ result: 'failed', uri: `${base}/nope.img`, error: { code: 'RESPONSE_CODE' } });
    expect(j.error.message).toMatch(/4\.04/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('-o - writes the data to stdout and the summary to stderr', async () => {
    const r = await run([`${base}/fw.txt`, '-o', '-']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(text);
    expect(r.err).toBe(`stdout: ${text.length} bytes in 11 blocks (Q-Block2)\n`);
    expect(existsSync('-')).toBe(false);
    expect((await run([`${base}/fw.txt`, '-o', '-', '--json'])).code).toBe(2);
  });

  it('-o DIR writes DIR/<last path segment>, as cp does', async () => {
    const out = await mkdtemp(join(dir, 'todir-'));
    const r = await run([`${base}/fw.txt`, '-o', out]);
    expect(r.code, r.err).toBe(0);
    expect(await filesIn(out)).toEqual(['fw.txt']);
    expect(await readFile(join(out, 'fw.txt'), 'utf8')).toBe(text);
  });

  it('a missing output directory fails before any request is sent', async () => {
    const silent = await silentServer();
    try {
      const r = await run([`coap://127.0.0.1:${silent.port}/files/x.img`, '-o', join(dir, 'no-such-dir', 'x.img')]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/^coapfw get: \S+no-such-dir: no such directory \(for \S+x\.img\) \[IO_ERROR\]\n$/);
      expect(silent.received()).toBe(0);
    } finally {
      await silent.close();
    }
  });

  it('a FIFO is written as a stream, never replaced by a file', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const chunks: Buffer[] = [];
    const reader = createReadStream(fifo);
    reader.on('data', (d) => chunks.push(d as Buffer));
    const closed = new Promise((resolve) => reader.on('close', resolve));
    const r = await run([`${base}/fw.txt`, '-o', fifo]);
    await closed;
    expect(r.code, r.err).toBe(0);
    expect(Buffer.concat(chunks).toString()).toBe(text);
    expect(statSync(fifo).isFIFO()).toBe(true);
    expect(existsSync(`${fifo}.part`)).toBe(false);
  });

  it('--json prints one result line on success and nothing else on stdout', async () => {
    const out = join(await mkdtemp(join(dir, 'json-')), 'fw.txt');
    const r = await run([`${base}/fw.txt`, '-o', out, '--json']);
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ result: 'ok', uri: `${base}/fw.txt`, file: out, bytes: text.length, blocks: 11, resumedFrom: 0, restarted: false });
    expect(r.err).toBe('');
  });
});

describe('coapfw get --resume', () => {
  it('keeps a part holding data after --timeout, and resumes it at its own block size with a note', { timeout: 30_000 }, async () => {
    const out = join(await mkdtemp(join(dir, 'resume-')), 'big.bin');
    const uri = `coap://127.0.0.1:${slow.address().port}/files/big.bin`;
    // Block2, one request per 20 ms round trip: surely not done in 0.8 s (Q-Block2 might be).
    const first = await run([uri, '-o', out, '--timeout', '0.8', '--no-qblock2']);
    expect(first.code).toBe(1);
    expect(first.err).toMatch(/not complete within --timeout 0\.8 s; [\d.]+ KiB kept in \S+big\.bin\.part; run the same command with --resume to continue \[TIMEOUT\]/);
    const kept = statSync(`${out}.part`).size;
    expect(kept).toBeGreaterThan(0);
    const second = await run([uri, '-o', out, '--resume', '--block-size', '256']);
    expect(second.code, second.err).toBe(0);
    expect(second.err).toContain(`coapfw get: ${out}.part was started with 1024-byte blocks: continuing with those (--block-size 256 applies to a new download)\n`);
    expect(second.err).toMatch(/ \((Q-Block2; )?resumed with \d+ bytes held\)\n$/);
    expect(new Uint8Array(await readFile(out))).toEqual(big);
    expect(existsSync(`${out}.part`)).toBe(false);
  });
});
