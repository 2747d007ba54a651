/**
 * Interop: OpenSSL's DTLS 1.2 client against our DTLS server
 * (`openssl s_client -dtls1_2 -psk HEX -psk_identity ID -cipher PSK-AES128-CCM8`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import type { DtlsServer } from '../src/transport/dtls/server.js';
import { IDENTITY, KEY, echoServer } from '../test/dtls/helpers.js';

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

interface Run {
  code: number | null;
  out: string;
}

/** Runs s_client, types `line` once connected, waits until `until` appears in stdout or the timeout. */
function sClient(port: number, key: string, until: RegExp, line = 'ping from openssl', extra: string[] = []): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn('openssl', [
      's_client', '-dtls1_2', '-connect', `127.0.0.1:${port}`,
      '-psk', key, '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8', ...extra,
    ]);
    let out = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(t);
      p.kill();
    };
    const t = setTimeout(finish, 8000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) finish();
    });
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.write(`${line}\n`);
  });
}

const cleanup: DtlsServer[] = [];
afterEach(async () => {
  for (const s of cleanup.splice(0)) await s.close();
});

describe.runIf(hasOpenssl)('openssl s_client -dtls1_2 against our server', () => {
  it('completes a PSK-AES128-CCM8 handshake and round-trips application data', async () => {
    const server = await echoServer();
    cleanup.push(server);
    const run = await sClient(server.address().port, Buffer.from(KEY).toString('hex'), /echo:ping from openssl/);
    expect(run.out).toMatch(/Cipher is PSK-AES128-CCM8/);
    expect(run.out).toContain('echo:ping from openssl');
    expect(run.out).toMatch(/Extended master secret: yes/);
    expect(run.out).toMatch(/Secure Renegotiation IS supported/);
    expect(server.stats.handshakesOk).toBe(1);
  });

  it('rejects a wrong key with an alert on the openssl side and a failure event on ours', async () => {
    const failures: string[] = [];
    const server = await echoServer({ onEvent: (e) => void (e.type === 'handshake-failed' && failures.push(e.reason)) });
    cleanup.push(server);
    const run = await sClient(server.address().port, 'deadbeefdeadbeefdeadbeefdeadbeef', /alert|error/i);
    expect(run.out).toMatch(/bad record mac|alert/i);
    expect(run.out).not.toContain('echo:');
    expect(server.stats.handshakesOk).toBe(0);
    expect(failures.join('\n')).toMatch(/wrong PSK/);
    expect(server.sessionCount).toBe(0);
  });
});
