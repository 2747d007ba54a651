/** Shared helpers for the DTLS tests: an echo server and a request/reply helper. */
import { afterEach } from 'vitest';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createDtlsServer, type DtlsServer, type DtlsServerOptions } from '../../src/transport/dtls/server.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import type { Peer, Transport } from '../../src/core/transport.js';
import { ImpairedTransport, type Impairment } from '../../src/transport/impaired.js';
import { UdpTransport } from '../../src/transport/udp.js';

export const IDENTITY = 'dev-0001';
export const KEY = Uint8Array.from(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
export const OTHER_IDENTITY = 'dev-0002';
export const OTHER_KEY = Uint8Array.from(Buffer.from('ffeeddccbbaa99887766554433221100', 'hex'));

/** A DTLS server on 127.0.0.1 that echoes every datagram prefixed with "echo:". */
export async function echoServer(extra: Partial<DtlsServerOptions> = {}): Promise<DtlsServer> {
  const server = await createDtlsServer({
    psk: PskStore.fromEntries([
      [IDENTITY, KEY],
      [OTHER_IDENTITY, OTHER_KEY],
    ]),
    ...extra,
  });
  server.onMessage((data, peer) => {
    void server.send(Buffer.concat([Buffer.from('echo:'), data]), peer).catch(() => {});
  });
  return server;
}

/** Sends `text` and waits for the next datagram; resends every `resendMs` (for lossy links). */
export function request(t: Transport, peer: Peer, text: string, resendMs = 0, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    let resend: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      clearInterval(resend);
      reject(new Error(`no reply to ${text}`));
    }, timeoutMs);
    t.onMessage((data) => {
      const s = Buffer.from(data).toString();
      if (s !== `echo:${text}`) return; // a late reply to an earlier request
      clearTimeout(timer);
      clearInterval(resend);
      resolve(s);
    });
    const send = (): void => void t.send(Buffer.from(text), peer).catch(() => {});
    send();
    if (resendMs > 0) resend = setInterval(send, resendMs);
  });
}


/** Verdict of a proxy hook on one datagram. */
export type Verdict = 'forward' | 'drop';

/**
 * A UDP proxy between one client and the server, for tests: it records and can
 * drop datagrams in either direction, inject datagrams, and impair both
 * directions with the shared {@link ImpairedTransport}.
 */
export class UdpProxy {
  readonly toServer: Uint8Array[] = [];
  readonly toClient: Uint8Array[] = [];
  clientHook: (d: Uint8Array) => Verdict = () => 'forward';
  serverHook: (d: Uint8Array) => Verdict = () => 'forward';
  private client: Peer | undefined;
  /** The impaired wrappers, if any, for their drop counters. */
  readonly impaired: ImpairedTransport[] = [];

  private constructor(
    private readonly front: Transport,
    private readonly back: Transport,
    private readonly server: Peer,
  ) {
    front.onMessage((d, peer) => {
      this.client = peer;
      this.toServer.push(Uint8Array.from(d));
      if (this.clientHook(d) === 'forward') void back.send(d, server).catch(() => {});
    });
    back.onMessage((d) => {
      this.toClient.push(Uint8Array.from(d));
      if (this.client && this.serverHook(d) === 'forward') void front.send(d, this.client).catch(() => {});
    });
  }

  static async start(serverPort: number, impairment?: { toServer?: Impairment; toClient?: Impairment }): Promise<UdpProxy> {
    let front: Transport = await UdpTransport.bind();
    let back: Transport = await UdpTransport.bind();
    if (impairment?.toClient) front = new ImpairedTransport(front, impairment.toClient);
    if (impairment?.toServer) back = new ImpairedTransport(back, impairment.toServer);
    const proxy = new UdpProxy(front, back, { address: '127.0.0.1', port: serverPort });
    for (const t of [front, back]) if (t instanceof ImpairedTransport) proxy.impaired.push(t);
    return proxy;
  }

  /** Datagrams dropped by the impairment, both directions. */
  get dropped(): number {
    return this.impaired.reduce((n, t) => n + t.stats.dropped, 0);
  }

  /** Port the client should connect to. */
  get port(): number {
    return this.front.address().port;
  }

  /** The client's address as the proxy saw it (after its first datagram). */
  get clientPeer(): Peer | undefined {
    return this.client;
  }

  /** Sends raw bytes to the client as if from the server. */
  injectToClient(d: Uint8Array): Promise<void> {
    if (this.client === undefined) return Promise.reject(new Error('no client yet'));
    return this.front.send(d, this.client);
  }

  /** Sends raw bytes to the server as if from the client. */
  inject(d: Uint8Array): Promise<void> {
    return this.back.send(d, this.server);
  }

  async close(): Promise<void> {
    await this.front.close();
    await this.back.close();
  }
}

/** Content type of the first record of a datagram. */
export function firstType(d: Uint8Array): number {
  return d[0]!;
}

/** Resolves when `cond()` holds, polling every 10 ms, or rejects after `ms`. */
export async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Two consecutive free UDP ports `[p, p + 1]` on `host`, for servers such as
 * libcoap's coap-server that listen for CoAP on `-p` and for coaps on the next
 * port. Both are bound at once to check, then released (a small race remains
 * until the server binds them, as with any free-port probe).
 */
export async function freeUdpPortPair(host = '127.0.0.1'): Promise<[number, number]> {
  const bind = (port: number): Promise<UdpSocket | undefined> =>
    new Promise((resolve) => {
      const s = createSocket(host.includes(':') ? 'udp6' : 'udp4');
      s.once('error', () => {
        try {
          s.close();
        } catch {
          /* never bound */
        }
        resolve(undefined);
      });
      s.bind(port, host, () => resolve(s));
    });
  const close = (s: UdpSocket): Promise<void> => new Promise((r) => s.close(() => r()));
  for (let i = 0; i < 50; i++) {
    const a = await bind(0);
    if (a === undefined) continue;
    const p = a.address().port;
    const b = p < 65535 ? await bind(p + 1) : undefined;
    await close(a);
    if (b !== undefined) {
      await close(b);
      return [p, p + 1];
    }
  }
  throw new Error(`no two consecutive free UDP ports on ${host}`);
}

/** Everything passed to the returned `track` is closed (newest first) after each test. */
export function closeAfterEach(): <T extends { close(): Promise<void> }>(x: T) => T {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const c of open.splice(0).reverse()) await c.close();
  });
  return (x) => {
    open.push(x);
    return x;
  };
}
