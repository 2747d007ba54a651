/**
 * The UDP transport on both of its sockets: coapfw's native one
 * (native/udp.c, recvmmsg) and node:dgram, the fallback where the native one
 * is not built. Each behaviour is checked on both, so the fallback stays as
 * tested as the default; the native socket must be built on Linux (`npm ci`
 * builds it), so that these tests cannot quietly run on one socket only.
 */
import { createSocket, type Socket } from 'node:dgram';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Peer } from '../../src/core/transport.js';
import { isCoapfwError } from '../../src/errors.js';
import { nativeUdpAvailable, UdpTransport } from '../../src/transport/udp.js';
import { BIN, runCli } from '../cli/spawn-cli.js';

const run = promisify(execFile);
const BACKENDS = ['native', 'dgram'] as const;

function bind(backend: (typeof BACKENDS)[number], options: Parameters<typeof UdpTransport.bind>[0] = {}): Promise<UdpTransport> {
  return UdpTransport.bind({ ...options, native: backend === 'native' });
}

/** Datagrams a transport receives, and a way to wait for the n-th. */
function collect(t: UdpTransport): { got: Array<{ data: Uint8Array; peer: Peer }>; until(n: number, ms?: number): Promise<void> } {
  const got: Array<{ data: Uint8Array; peer: Peer }> = [];
  t.onMessage((data, peer) => got.push({ data, peer }));
  return {
    got,
    until: (n, ms = 3000) =>
      new Promise((resolve, reject) => {
        const started = Date.now();
        const poll = (): void => {
          if (got.length >= n) return resolve();
          if (Date.now() - started > ms) return reject(new Error(`${got.length} of ${n} datagrams arrived`));
          setTimeout(poll, 5);
        };
        poll();
      }),
  };
}

function dgramSocket(type: 'udp4' | 'udp6', host: string): Promise<Socket> {
  const s = createSocket(type);
  return new Promise((resolve) => s.bind(0, host, () => resolve(s)));
}

const bytes = (n: number, seed = 0): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

describe('the native UDP socket is built here', () => {
  it('loads on Linux (npm ci builds it; else `npm run install`)', () => {
    if (process.platform === 'linux') expect(nativeUdpAvailable()).toBe(true);
    else expect(nativeUdpAvailable()).toBe(false);
  });
});

describe.each(BACKENDS)('UDP transport on %s', (backend) => {
  it('says which socket it runs on', async () => {
    const t = await bind(backend);
    try {
      expect(t.backend).toBe(backend);
    } finally {
      await t.close();
    }
  });

  it('carries datagrams both ways, each in a buffer of its own, the sender named by address and port', async () => {
    const a = await bind(backend);
    const b = await bind(backend);
    const ca = collect(a);
    const cb = collect(b);
    try {
      const big = bytes(3000); // larger than one block: the service's 4.13 test sends 2100 bytes whole
      await b.send(big, a.address());
      await b.send(bytes(0), a.address());
      await ca.until(2);
      expect(ca.got[0]!.data).toEqual(big);
      expect(ca.got[1]!.data).toHaveLength(0);
      expect(ca.got[0]!.peer).toEqual({ address: '127.0.0.1', port: b.address().port });
      a.post(bytes(10, 1), ca.got[0]!.peer);
      await cb.until(1);
      expect(cb.got[0]!.data).toEqual(bytes(10, 1));
      expect(cb.got[0]!.peer).toEqual(a.address());
      // Nothing received is a view into a buffer the socket reuses: keep one, receive more, it is unchanged.
      const kept = ca.got[0]!.data;
      for (let i = 0; i < 40; i++) b.post(bytes(3000, i + 9), a.address());
      await ca.until(42);
      expect(kept).toEqual(big);
      expect(ca.got[41]!.data).toEqual(bytes(3000, 48));
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('delivers a burst from several senders whole and in order, with one Peer object per sender', async () => {
    const server = await bind(backend, { recvBufferSize: 1 << 20 });
    const c = collect(server);
    const senders = await Promise.all([0, 1, 2].map(() => dgramSocket('udp4', '127.0.0.1')));
    try {
      const port = server.address().port;
      for (let i = 0; i < 100; i++) for (const [k, s] of senders.entries()) s.send(Uint8Array.of(k, i), port, '127.0.0.1');
      await c.until(300);
      for (const [k, s] of senders.entries()) {
        const mine = c.got.filter((g) => g.peer.port === s.address().port);
        expect(mine.map((g) => g.data[1])).toEqual(Array.from({ length: 100 }, (_, i) => i));
        expect(mine.every((g) => g.data[0] === k && g.peer === mine[0]!.peer)).toBe(true);
      }
    } finally {
      senders.forEach((s) => s.close());
      await server.close();
    }
  });

  it('serves IPv4 peers on a dual-stack socket, named without ::ffff:, and IPv6 peers on ::1', async () => {
    const t = await bind(backend, { host: '::' });
    const c = collect(t);
    const v4 = await dgramSocket('udp4', '127.0.0.1');
    const v6 = await dgramSocket('udp6', '::1');
    try {
      const answered = (s: Socket) => new Promise<Buffer>((resolve) => s.once('message', resolve));
      const r4 = answered(v4);
      const r6 = answered(v6);
      v4.send(Uint8Array.of(4), t.address().port, '127.0.0.1');
      v6.send(Uint8Array.of(6), t.address().port, '::1');
      await c.until(2);
      const by = (n: number) => c.got.find((g) => g.data[0] === n)!.peer;
      expect(by(4)).toEqual({ address: '127.0.0.1', port: v4.address().port });
      expect(by(6)).toEqual({ address: '::1', port: v6.address().port });
      t.post(Uint8Array.of(40), by(4));
      await t.send(Uint8Array.of(60), by(6));
      expect([...(await r4)]).toEqual([40]);
      expect([...(await r6)]).toEqual([60]);
      expect(t.address().address).toBe('::');
    } finally {
      v4.close();
      v6.close();
      await t.close();
    }
  });

  it('refuses what cannot be sent with IO_ERROR, and a post of it neither throws nor stops the socket', async () => {
    const t = await bind(backend);
    const other = await bind(backend);
    const c = collect(other);
    try {
      t.post(Uint8Array.of(1), { address: '127.0.0.1', port: 0 });
      t.post(Uint8Array.of(1), { address: 'not-an-address', port: 5683 });
      await expect(t.send(Uint8Array.of(1), { address: '127.0.0.1', port: 0 })).rejects.toMatchObject({ code: 'IO_ERROR' });
      await expect(t.send(new Uint8Array(70_000), other.address())).rejects.toMatchObject({ code: 'IO_ERROR' });
      await t.send(Uint8Array.of(2), other.address());
      await c.until(1);
      expect([...c.got[0]!.data]).toEqual([2]);
    } finally {
      await Promise.all([t.close(), other.close()]);
    }
  });

  it('binds a host name as its address (localhost), and names a host it cannot bind', async () => {
    const t = await bind(backend, { host: 'localhost' });
    try {
      expect(t.address().address).toBe('127.0.0.1');
    } finally {
      await t.close();
    }
    const e = await bind(backend, { host: '192.0.2.1' }).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'IO_ERROR')).toBe(true);
    expect((e as Error).message).toMatch(/^udp: cannot bind 192\.0\.2\.1:0: /);
  });

  it('a second socket on a port in use fails with ADDRESS_IN_USE', async () => {
    const t = await bind(backend);
    try {
      const e = await bind(backend, { port: t.address().port }).catch((x: unknown) => x);
      expect(isCoapfwError(e, 'ADDRESS_IN_USE')).toBe(true);
      expect((e as Error).message).toBe(`udp: port ${t.address().port} is in use (binding 127.0.0.1:${t.address().port})`);
    } finally {
      await t.close();
    }
  });

  it('a connected socket hears the ICMP port unreachable its send draws, and sends nowhere else', async () => {
    const gone = await bind(backend);
    const port = gone.address().port;
    await gone.close();
    const errors: string[] = [];
    const t = await bind(backend, { connect: { address: '127.0.0.1', port }, onUnreachable: (e) => errors.push(`${e.code}: ${e.message}`) });
    try {
      await t.send(Uint8Array.of(1), { address: '127.0.0.1', port });
      for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(errors[0]).toBe(`UNREACHABLE: nothing listens on 127.0.0.1:${port} (ICMP port unreachable)`);
      await expect(t.send(Uint8Array.of(1), { address: '127.0.0.1', port: port + 1 })).rejects.toThrow(/connected to 127\.0\.0\.1/);
      // The error did not end the socket: once something listens there, the two talk.
      const back = await bind(backend, { port });
      const c = collect(t);
      try {
        await back.send(Uint8Array.of(7), t.address());
        await c.until(1);
        expect([...c.got[0]!.data]).toEqual([7]);
      } finally {
        await back.close();
      }
    } finally {
      await t.close();
    }
  });

  it('after close: sends reject with TRANSPORT_CLOSED, a second close is fine, and a handler that closes stops delivery', async () => {
    const t = await bind(backend);
    const sender = await dgramSocket('udp4', '127.0.0.1');
    let seen = 0;
    const closed = new Promise<void>((resolve) =>
      t.onMessage(() => {
        seen++;
        void t.close().then(resolve);
      }),
    );
    try {
      for (let i = 0; i < 20; i++) sender.send(Uint8Array.of(i), t.address().port, '127.0.0.1');
      await closed;
      await new Promise((r) => setTimeout(r, 50));
      expect(seen).toBe(1);
      await expect(t.send(Uint8Array.of(1), { address: '127.0.0.1', port: 9 })).rejects.toMatchObject({ code: 'TRANSPORT_CLOSED' });
      t.post(Uint8Array.of(1), { address: '127.0.0.1', port: 9 });
      await t.close();
    } finally {
      sender.close();
    }
  });
});

describe('native socket only', () => {
  it('drops a datagram larger than its 8 KiB slot rather than deliver it cut short; the next one arrives', async () => {
    const t = await bind('native');
    const c = collect(t);
    const s = await dgramSocket('udp4', '127.0.0.1');
    try {
      s.send(bytes(9000), t.address().port, '127.0.0.1');
      s.send(bytes(8192, 3), t.address().port, '127.0.0.1');
      await c.until(1);
      await new Promise((r) => setTimeout(r, 30));
      expect(c.got).toHaveLength(1);
      expect(c.got[0]!.data).toEqual(bytes(8192, 3));
    } finally {
      s.close();
      await t.close();
    }
  });

  it('past 4096 senders its table of them starts over, and every datagram is still named by its true sender', { timeout: 30_000 }, async () => {
    const t = await bind('native', { recvBufferSize: 4 << 20 });
    const c = collect(t);
    const senders: Socket[] = [];
    try {
      for (let i = 0; i < 4200; i++) senders.push(await dgramSocket('udp4', '127.0.0.1'));
      const port = t.address().port;
      // In rounds, so that the kernel's queue holds them all.
      for (let i = 0; i < senders.length; i += 500) {
        for (const s of senders.slice(i, i + 500)) s.send(Buffer.from(String(s.address().port)), port, '127.0.0.1');
        await c.until(Math.min(i + 500, senders.length), 10_000);
      }
      senders[0]!.send(Buffer.from(String(senders[0]!.address().port)), port, '127.0.0.1');
      await c.until(senders.length + 1, 10_000);
      expect(c.got.filter((g) => String(g.peer.port) !== Buffer.from(g.data).toString())).toEqual([]);
      expect(new Set(c.got.map((g) => g.peer.port)).size).toBe(4200);
    } finally {
      senders.forEach((s) => s.close());
      await t.close();
    }
  });

  it('COAPFW_NATIVE_UDP=0 turns it off: the default is node:dgram, and insisting on native says why', async () => {
    const script = `import { UdpTransport } from ${JSON.stringify(join(BIN, '../../transport/udp.js'))};
const t = await UdpTransport.bind();
const backend = t.backend;
await t.close();
const e = await UdpTransport.bind({ native: true }).catch((x) => x);
console.log(JSON.stringify({ backend, code: e.code, message: e.message }));`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, COAPFW_NATIVE_UDP: '0' } });
    expect(JSON.parse(stdout)).toEqual({ backend: 'dgram', code: 'DRIVER_MISSING', message: 'udp: the native socket is turned off (COAPFW_NATIVE_UDP=0)' });
  });
});

describe.each(BACKENDS)('coapfw serve and coapfw get on %s', (backend) => {
  it('move a file whole, and the processes load the native socket only when it is theirs', { timeout: 30_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'coapfw-udp-'));
    const env = { ...process.env, COAPFW_NATIVE_UDP: backend === 'native' ? '1' : '0' };
    const image = bytes(200_000, 5);
    await writeFile(join(dir, 'fw.bin'), image);
    const serve = runCli(['serve', dir, '--host', '127.0.0.1', '--port', '0', '--json'], { env });
    try {
      await serve.waitFor((out) => out.includes('"listening"'));
      const listening = JSON.parse(serve.out().split('\n')[0]!) as { urls: string[]; udp: string };
      expect(listening.udp).toBe(backend);
      const url = listening.urls[0]!;
      const maps = readFileSync(`/proc/${serve.child.pid}/maps`, 'utf8');
      expect(maps.includes('coapfw_udp.node')).toBe(backend === 'native');
      for (const mode of [[], ['--no-qblock2']]) {
        await run(process.execPath, [BIN, 'get', `${url}/files/fw.bin`, '-o', join(dir, 'got.bin'), ...mode], { env, timeout: 20_000 });
        expect(new Uint8Array(await readFile(join(dir, 'got.bin')))).toEqual(image);
      }
    } finally {
      serve.child.kill('SIGTERM');
      await serve.done;
      await rm(dir, { recursive: true, force: true });
    }
  });
});
