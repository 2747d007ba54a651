/**
 * Interop: OpenSSL's DTLS 1.2 client against our DTLS server
 * (`openssl s_client -dtls1_2 -psk HEX -psk_identity ID -cipher PSK-AES128-CCM8`),
 * libcoap's coap-client-openssl / coap-client-gnutls at the DTLS level, and our
 * client (node-dtls-client) against libcoap's coap-server-openssl.
 * Missing binaries skip locally but fail under CI ({@link describeWithBinaries}).
 */
import { spawn, spawnSync } from 'node:child_process';
import { afterEach, expect, it } from 'vitest';
import { connectDtls } from '../src/transport/dtls/client.js';
import { PskStore } from '../src/transport/dtls/psk-store.js';
import { ContentType, parseRecords } from '../src/transport/dtls/record.js';
import { IDENTITY, KEY, UdpProxy, echoServer, freeUdpPortPair, until } from '../test/dtls/helpers.js';
import { describeWithBinaries } from './helpers.js';

const hasBin = (bin: string): boolean => spawnSync(bin, ['-?']).error === undefined;
/** Why `bins` cannot run here, or undefined. */
const missing = (...bins: string[]): string | undefined => {
  const absent = bins.filter((b) => (b === 'openssl' ? spawnSync('openssl', ['version']).status !== 0 : !hasBin(b)));
  return absent.length === 0 ? undefined : `${absent.join(', ')} not found (apt-get install openssl libcoap3-bin)`;
};

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

const cleanup: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const s of cleanup.splice(0)) await s.close();
});

describeWithBinaries('openssl s_client -dtls1_2 against our server', missing('openssl'), () => {
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

describeWithBinaries('openssl s_client through a proxy that loses our final flight', missing('openssl'), () => {
  it('retransmits ChangeCipherSpec+Finished when the client repeats its Finished (RFC 6347 §4.2.4)', async () => {
    const server = await echoServer();
    cleanup.push(server);
    const proxy = await UdpProxy.start(server.address().port);
    cleanup.push(proxy);
    let dropped = 0;
    proxy.serverHook = (d) => {
      const isFinalFlight = parseRecords(d).some((r) => r.type === ContentType.changeCipherSpec);
      if (isFinalFlight && dropped === 0) return (dropped++, 'drop');
      return 'forward';
    };
    const run = await sClient(proxy.port, Buffer.from(KEY).toString('hex'), /echo:ping from openssl/);
    expect(dropped).toBe(1);
    expect(run.out).toContain('echo:ping from openssl');
    expect(server.stats.handshakesStarted).toBe(1); // the same handshake completed, no restart
    expect(server.stats.handshakesOk).toBe(1);
  });
});

/** Runs a libcoap client binary to completion (bounded). */
function libcoap(bin: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(bin, args);
    let out = '';
    const t = setTimeout(() => p.kill(), 10_000);
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', () => undefined);
    p.on('close', (code) => (clearTimeout(t), resolve({ code, out })));
  });
}

for (const bin of ['coap-client-openssl', 'coap-client-gnutls']) describeWithBinaries(`libcoap ${bin} at the DTLS level`, missing(bin), () => {
  it('handshakes with -u/-k and gets the reply of a minimal responder', async () => {
    const server = await echoServer({ psk: PskStore.fromEntries([['libcoap-dev', Buffer.from('secretPSK1234567')]]) });
    cleanup.push(server);
    const seen: string[] = [];
    // Not a CoAP server: answer any CON request with a piggy-backed 2.05 "hello dtls" (RFC 7252 §3, §5.2.1).
    server.onMessage((d, peer) => {
      seen.push(Buffer.from(d).toString('hex'));
      const tkl = d[0]! & 0x0f;
      const reply = Buffer.concat([Buffer.from([0x60 | tkl, 0x45, d[2]!, d[3]!]), Buffer.from(d.subarray(4, 4 + tkl)), Buffer.from([0xff]), Buffer.from('hello dtls')]);
      void server.send(reply, peer);
    });
    const run = await libcoap(bin, ['-u', 'libcoap-dev', '-k', 'secretPSK1234567', '-B', '5', `coaps://127.0.0.1:${server.address().port}/x`]);
    expect(run.out).toContain('hello dtls');
    expect(seen.length).toBeGreaterThanOrEqual(1);
    expect(seen[0]!.slice(0, 4)).toBe('4' + seen[0]![1] + '01'); // a CON GET arrived decrypted
    expect(server.stats.handshakesOk).toBe(1);
  });
});

describeWithBinaries('our DTLS client against libcoap coap-server-openssl', missing('coap-server-openssl'), () => {
  it('handshakes (retrying until the server is up) and gets a CoAP reply; a wrong key ends in a timeout error', async () => {
    // coap-server listens for CoAP on -p and for coaps on the next port: both must be free.
    const [coapPort, port] = await freeUdpPortPair();
    const server = spawn('coap-server-openssl', ['-A', '127.0.0.1', '-p', String(coapPort), '-k', 'secretPSK1234567']);
    try {
      const t = await connectDtls({ host: '127.0.0.1', port, identity: 'dev', key: Buffer.from('secretPSK1234567'), retries: 10, handshakeTimeoutMs: 500, backoffMs: 50 });
      const reply = new Promise<Uint8Array>((resolve) => t.onMessage((d) => resolve(d)));
      await t.send(Uint8Array.of(0x40, 0x01, 0x12, 0x34), t.remote); // CON GET / (RFC 7252 §3), MID 0x1234
      const d = await reply;
      expect([d[0]! >> 4, d[1], d[2], d[3]]).toEqual([0x6, 0x45, 0x12, 0x34]); // ACK 2.05, same MID
      expect(Buffer.from(d).toString('latin1')).toContain('libcoap');
      await t.close();
      // OpenSSL drops a Finished that does not authenticate without an alert: every attempt times out.
      const wrong = connectDtls({ host: '127.0.0.1', port, identity: 'dev', key: Buffer.from('wrong-key-123456'), retries: 1, handshakeTimeoutMs: 300, backoffMs: 20 });
      const err = await wrong.then(
        () => expect.fail('a wrong key must not connect'),
        (e: unknown) => e as Error & { code: string; cause?: Error },
      );
      expect(err.code).toBe('DTLS_HANDSHAKE_FAILED');
      expect(err.message).toMatch(/^dtls: no handshake with 127\.0\.0\.1:\d+ after 2 attempts of 300 ms/);
      expect(err.cause?.message).toMatch(/handshake timed out/i);
      expect(server.exitCode).toBeNull(); // libcoap's server survived the bad handshakes
      const again = await connectDtls({ host: '127.0.0.1', port, identity: 'dev', key: Buffer.from('secretPSK1234567'), retries: 3, handshakeTimeoutMs: 500, backoffMs: 50 });
      const reply2 = new Promise<Uint8Array>((resolve) => again.onMessage((d) => resolve(d)));
      await again.send(Uint8Array.of(0x40, 0x01, 0x12, 0x35), again.remote);
      expect([...(await reply2).subarray(1, 4)]).toEqual([0x45, 0x12, 0x35]);
      await again.close();
    } finally {
      server.kill();
    }
  });
});

describeWithBinaries('renegotiation (RFC 7925 §13: not supported)', missing('openssl'), () => {
  it('answers an in-session ClientHello with a no_renegotiation warning instead of hanging', async () => {
    const closed: string[] = [];
    const server = await echoServer({ onEvent: (e) => void (e.type === 'closed' && closed.push(e.reason)) });
    cleanup.push(server);
    const proxy = await UdpProxy.start(server.address().port);
    cleanup.push(proxy);
    const p = spawn('openssl', [
      's_client', '-dtls1_2', '-connect', `127.0.0.1:${proxy.port}`,
      '-psk', Buffer.from(KEY).toString('hex'), '-psk_identity', IDENTITY, '-cipher', 'PSK-AES128-CCM8',
    ]);
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise((r) => p.on('close', r));
    try {
      p.stdin.write('one\n');
      await until(() => out.includes('echo:one'), 5000);
      const before = proxy.toClient.length;
      p.stdin.write('R\n'); // s_client: renegotiate
      await until(() => proxy.toClient.slice(before).some((d) => parseRecords(d).some((r) => r.type === ContentType.alert && r.epoch === 1)), 5000);
      await until(() => server.sessionCount === 0, 5000); // OpenSSL gives up with a fatal alert
      expect(server.stats.internalErrors).toBe(0);
      expect(closed.length).toBe(1);
    } finally {
      p.kill();
      await exited;
    }
  });
});
