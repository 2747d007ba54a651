/**
 * Interop over coaps (DTLS 1.2 PSK) with libcoap 4.3.1:
 * - `coap-client-openssl` and `coap-client-gnutls -u ID -k KEY -b 1024` fetch
 *   1 MiB from our file server, in-process and as `coapfw serve --psk-file`
 *   (the built CLI, with a SIGHUP reload of the PSK file);
 * - `coapfw get coaps://` fetches from `coap-server-openssl -k KEY -d 10`
 *   after libcoap PUT the file there.
 * coap-client exits 0 even when its output is short, so only SHA-256 counts.
 * Missing binaries skip locally but fail under CI.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { downloadToFile } from '../src/client/file-sink.js';
import { startFileServer, type FileServer } from '../src/server/serve.js';
import { openClient } from '../src/client/open.js';
import { PskStore } from '../src/transport/dtls/psk-store.js';
import { freeUdpPortPair } from '../test/dtls/helpers.js';
import { describeWithBinaries, freeUdpPort } from './helpers.js';

const ID = 'coapfw-interop';
const KEY_TEXT = 'interop-secret-0'; // libcoap 4.3.1 takes -k as text
const KEY_HEX = Buffer.from(KEY_TEXT).toString('hex');
const MIB = 1024 * 1024;
const CLIENTS = ['coap-client-openssl', 'coap-client-gnutls'] as const;
const SERVER = 'coap-server-openssl';
const BIN = join(import.meta.dirname, '..', 'dist', 'src', 'cli', 'bin.js');

const missing = [...CLIENTS, SERVER].filter((c) => spawnSync(c, ['-h'], { stdio: 'ignore', timeout: 5000 }).error !== undefined);
const hashOf = (b: Uint8Array): string => bytesToHex(sha256(b));
const hashFile = (p: string): Promise<string> => readFile(p).then((b) => hashOf(b), () => 'missing');

/** Runs a child to completion with a hard time bound; never rejects. */
function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', (e) => (out += String(e)));
    child.on('close', (code) => (clearTimeout(t), resolve({ code, out })));
  });
}

/** A UDP port that was free a moment ago (libcoap's server cannot report an ephemeral one). */
const daemons: ChildProcess[] = [];
function daemon(cmd: string, args: readonly string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  daemons.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  child.on('error', (e) => (out += String(e)));
  return { child, output: () => out };
}

async function waitFor(cond: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `describe` that skips locally without libcoap but fails under CI. */
function describeLibcoap(name: string, body: () => void): void {
  describeWithBinaries(name, missing.length === 0 ? undefined : `${missing.join(', ')} not found (apt-get install libcoap3-bin)`, body);
}

let dir: string;
let bigHash: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-coaps-interop-'));
  const big = Uint8Array.from({ length: MIB }, (_, i) => (i * 2246822519) >>> 24);
  bigHash = hashOf(big);
  await writeFile(join(dir, 'big'), big);
});
afterAll(async () => {
  for (const d of daemons) d.kill('SIGKILL');
  if (dir) await rm(dir, { recursive: true, force: true });
});

describeLibcoap('libcoap clients fetch 1 MiB from our coaps server', () => {
  let server: FileServer;
  beforeAll(async () => {
    const psk = PskStore.parse(`${ID} ${KEY_HEX}\n`);
    server = await startFileServer({ dir, coap: false, refreshMs: 0, secure: { psk, host: '127.0.0.1', port: 0 } });
  });
  afterAll(() => server?.close());

  it.each(CLIENTS)('%s -u ID -k KEY -b 1024 gets the right SHA-256', async (client) => {
    const out = join(dir, `${client}.out`);
    const uri = `coaps://127.0.0.1:${server.dtls!.address().port}/files/big`;
    const r = await run(client, ['-u', ID, '-k', KEY_TEXT, '-b', '1024', uri, '-o', out], 60_000);
    expect(await hashFile(out), r.out).toBe(bigHash);
  });

  it('coap-client-openssl with a wrong key gets nothing, and the server keeps serving', async () => {
    const uri = `coaps://127.0.0.1:${server.dtls!.address().port}/files/big`;
    const failed = server.dtls!.stats.handshakesFailed;
    const bad = join(dir, 'bad.out');
    await run('coap-client-openssl', ['-u', ID, '-k', 'not-the-key', '-B', '5', uri, '-o', bad], 20_000);
    expect(await hashFile(bad)).not.toBe(bigHash);
    expect(server.dtls!.stats.handshakesFailed).toBeGreaterThan(failed);
    const good = join(dir, 'good.out');
    await run('coap-client-openssl', ['-u', ID, '-k', KEY_TEXT, '-b', '1024', uri, '-o', good], 60_000);
    expect(await hashFile(good)).toBe(bigHash);
  });
});

describeLibcoap('libcoap against `coapfw serve --psk-file` (the built CLI)', () => {
  it('serves coaps only, and picks up a new identity on SIGHUP', async () => {
    if (!existsSync(BIN)) expect.fail(`${BIN} missing: run npm run build (npm test does)`);
    const pskFile = join(dir, 'keys.psk');
    await writeFile(pskFile, `# interop\n${ID} ${KEY_HEX}\n`);
    const port = await freeUdpPort();
    const d = daemon(process.execPath, [BIN, 'serve', dir, '--host', '127.0.0.1', '--psk-file', pskFile, '--dtls-port', String(port), '--no-coap', '--verbose']);
    await waitFor(() => d.output().includes('serving'), 'coapfw serve to start');
    expect(d.output()).toContain(`coaps://127.0.0.1:${port}`);
    expect(d.output()).not.toContain('coap://');
    const uri = `coaps://127.0.0.1:${port}/files/big`;
    const out1 = join(dir, 'cli1.out');
    const r1 = await run('coap-client-openssl', ['-u', ID, '-k', KEY_TEXT, '-b', '1024', uri, '-o', out1], 60_000);
    expect(await hashFile(out1), r1.out).toBe(bigHash);
    expect(d.output()).toMatch(new RegExp(`dtls established coaps://127\\.0\\.0\\.1:\\d+: identity "${ID}"`));

    await appendFile(pskFile, `new-device ${Buffer.from('another-key-1234').toString('hex')}\n`);
    d.child.kill('SIGHUP');
    await waitFor(() => d.output().includes('reloaded 2 PSK identities'), 'the PSK reload');
    const out2 = join(dir, 'cli2.out');
    const r2 = await run('coap-client-gnutls', ['-u', 'new-device', '-k', 'another-key-1234', '-b', '1024', uri, '-o', out2], 60_000);
    expect(await hashFile(out2), r2.out).toBe(bigHash);
    d.child.kill('SIGTERM');
    await waitFor(() => d.child.exitCode !== null, 'coapfw serve to exit');
    expect(d.child.exitCode).toBe(0);
  });
});

describeLibcoap('coapfw get coaps:// from coap-server-openssl', () => {
  it('fetches 1 MiB that libcoap PUT there, with the right SHA-256', async () => {
    // coap-server listens for plain CoAP on -p and for DTLS on the next port: both must be free.
    const [port, dtlsPort] = await freeUdpPortPair();
    const d = daemon(SERVER, ['-A', '127.0.0.1', '-p', String(port), '-k', KEY_TEXT, '-d', '10', '-v', '0']);
    const base = `coaps://127.0.0.1:${dtlsPort}`;
    await waitFor(async () => {
      const r = await run('coap-client-openssl', ['-u', ID, '-k', KEY_TEXT, '-B', '2', `${base}/.well-known/core`], 5000);
      return r.out.includes('</') || d.child.exitCode !== null;
    }, 'coap-server-openssl to answer');
    expect(d.child.exitCode, d.output()).toBeNull();
    const put = await run('coap-client-openssl', ['-m', 'put', '-b', '1024', '-f', join(dir, 'big'), '-u', ID, '-k', KEY_TEXT, `${base}/big`], 60_000);
    expect(put.code, put.out).toBe(0);

    const client = await openClient(`${base}/big`, { psk: { identity: ID, key: KEY_TEXT }, params: { ackTimeoutMs: 500 } });
    try {
      const out = join(dir, 'from-libcoap.out');
      const r = await downloadToFile(client, `${base}/big`, out, { retry: { attempts: 5, baseMs: 100 } });
      expect(r.bytes).toBe(MIB);
      expect(await hashFile(out)).toBe(bigHash);
    } finally {
      await client.close();
      d.child.kill('SIGTERM');
    }
  });
});
