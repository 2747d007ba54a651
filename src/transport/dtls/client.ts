/**
 * DTLS 1.2 PSK client transport on node-dtls-client 2.0.3 (RFC 6347, RFC 4279,
 * cipher suite TLS_PSK_WITH_AES_128_CCM_8 of RFC 6655 / RFC 7925 by default).
 *
 * node-dtls-client never retransmits handshake flights (RFC 6347 §4.2.4 says it
 * should), so one lost datagram fails the attempt. `connectDtls` therefore
 * retries the whole handshake on a fresh socket with bounded exponential
 * back-off and jitter.
 *
 * node-dtls-client also accepts datagrams from any source address and port.
 * We filter its UDP socket so that only the server's datagrams reach it
 * ({@link filterSource}); and since a plaintext alert during the handshake is
 * unauthenticated (RFC 6347 §4.1.2.7), a fatal alert is taken as final (wrong
 * key, unknown identity) only when it ends two attempts in a row.
 */
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { dtls } from 'node-dtls-client';
import { CoapfwError } from '../../errors.js';
import type { DatagramHandler, Peer, Transport } from '../../core/transport.js';
import { ContentType, parseRecords } from './record.js';

/** Options of {@link connectDtls}. */
export interface DtlsClientOptions {
  /** Server host name or IP literal. */
  readonly host: string;
  /** Server port; CoAP over DTLS uses 5684 (RFC 7252 §6.2). */
  readonly port: number;
  /** PSK identity (RFC 4279 §5.1, UTF-8). */
  readonly identity: string;
  /** The pre-shared key. */
  readonly key: Uint8Array;
  /** Extra handshake attempts after the first. Default 8 (each attempt fails on any lost datagram). */
  readonly retries?: number;
  /** Time allowed for one handshake attempt. Default 2000 ms (node-dtls-client minimum is 100). */
  readonly handshakeTimeoutMs?: number;
  /** Back-off before the first retry; doubles each time. Default 200 ms. */
  readonly backoffMs?: number;
  /** Upper bound of one back-off. Default 5000 ms. */
  readonly maxBackoffMs?: number;
  /** Cipher suites to offer (node-dtls-client names). Default: TLS_PSK_WITH_AES_128_CCM_8 only. */
  readonly ciphers?: ReadonlyArray<NonNullable<dtls.Options['ciphers']>[number]>;
  /** Local UDP port to bind (default: ephemeral). A device may keep its port across reconnects. */
  readonly localPort?: number;
  /** Aborts the connection attempts. */
  readonly signal?: AbortSignal;
  /** Random source for jitter, 0..1. Default Math.random. */
  readonly random?: () => number;
}

/** A connected DTLS client as a {@link Transport}; it talks to one server. */
export class DtlsClientTransport implements Transport {
  private handler: DatagramHandler = () => {};
  private closed = false;
  private readonly closeWaiters: Array<() => void> = [];

  /** @internal use {@link connectDtls}. */
  constructor(
    private readonly socket: dtls.Socket,
    /** The server this transport is connected to. */
    readonly remote: Peer,
  ) {
    socket.on('message', (msg: Buffer) => this.handler(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), this.remote));
    socket.on('close', () => this.markClosed());
    socket.on('error', () => this.markClosed());
  }

  /** True once the connection ended (closed by us, by the server, or by an error). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends one datagram to the server; `peer` must be the server. */
  send(data: Uint8Array, peer: Peer): Promise<void> {
    if (this.closed) return Promise.reject(new CoapfwError('TRANSPORT_CLOSED', 'dtls: connection is closed', { peer: this.remote }));
    if (peer.port !== this.remote.port || peer.address !== this.remote.address) {
      return Promise.reject(new CoapfwError('INVALID_ARGUMENT', `dtls: this connection only reaches ${fmt(this.remote)}, not ${fmt(peer)}`, { peer: this.remote }));
    }
    return new Promise((resolve, reject) => {
      try {
        this.socket.send(Buffer.from(data.buffer, data.byteOffset, data.length), (err) => {
          if (err) reject(new CoapfwError('IO_ERROR', `dtls: send to ${fmt(this.remote)} failed: ${err.message}`, { cause: err, peer: this.remote }));
          else resolve();
        });
      } catch (e) {
        reject(new CoapfwError('TRANSPORT_CLOSED', `dtls: ${(e as Error).message}`, { cause: e, peer: this.remote }));
      }
    });
  }

  onMessage(handler: DatagramHandler): void {
    this.handler = handler;
  }

  /** The local address. node-dtls-client keeps its UDP socket private, so we read it from there. */
  address(): Peer {
    const udp = (this.socket as unknown as { udp?: { address(): { address: string; port: number } } }).udp;
    try {
      const a = udp!.address();
      return { address: a.address, port: a.port };
    } catch {
      return { address: this.remote.address.includes(':') ? '::' : '0.0.0.0', port: 0 };
    }
  }

  /** Sends close_notify and closes the socket. Idempotent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.closeWaiters.push(resolve);
      try {
        this.socket.close();
      } catch {
        this.markClosed();
      }
      // Do not hang if the close_notify cannot be sent; release the port anyway.
      setTimeout(() => {
        try {
          (this.socket as unknown as { killConnection?: () => void }).killConnection?.();
        } catch {
          /* already closed */
        }
        this.markClosed();
      }, 500).unref();
    });
  }

  private markClosed(): void {
    if (!this.closed) {
      this.closed = true;
      this.socket.removeAllListeners('message');
    }
    for (const w of this.closeWaiters.splice(0)) w();
  }
}

function fmt(p: Peer): string {
  return p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}

/** One handshake attempt; resolves with the socket or rejects with the library's error. */
function attempt(remote: Peer, o: DtlsClientOptions, timeout: number): Promise<dtls.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dtls.createSocket({
      type: remote.address.includes(':') ? 'udp6' : 'udp4',
      address: remote.address,
      port: remote.port,
      psk: { [o.identity]: Buffer.from(o.key) },
      timeout,
      ...(o.localPort !== undefined ? { listenPort: o.localPort } : {}),
      ciphers: [...(o.ciphers ?? ['TLS_PSK_WITH_AES_128_CCM_8'])],
    });
    filterSource(socket, remote);
    const onAbort = (): void => fail(new Error('aborted'));
    const fail = (err: Error): void => {
      o.signal?.removeEventListener('abort', onAbort);
      socket.removeAllListeners();
      socket.on('error', () => {});
      try {
        (socket as unknown as { killConnection?: (e?: Error) => void }).killConnection?.();
      } catch {
        /* already closed */
      }
      reject(err);
    };
    o.signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('connected', () => {
      o.signal?.removeEventListener('abort', onAbort);
      socket.off('error', fail);
      resolve(socket);
    });
  });
}

/**
 * Lets only datagrams from `remote` reach node-dtls-client: it creates its UDP
 * socket (the private `udp` field) in the constructor with one 'message'
 * listener, which we wrap. Anything else on the local port is dropped.
 *
 * Also, until the handshake is done, a datagram from the server that starts
 * with a protected (epoch > 0) record before the server's ChangeCipherSpec is
 * dropped: it belongs to an earlier connection on the same local port (e.g.
 * the server's close_notify answering ours), and node-dtls-client fails the
 * handshake on it (RFC 6347 §4.1: records of an unknown epoch may be discarded).
 */
export function filterSource(socket: dtls.Socket, remote: Peer): void {
  const udp = (socket as unknown as { udp?: UdpSocket }).udp;
  if (udp === undefined) throw new CoapfwError('DTLS_HANDSHAKE_FAILED', 'dtls: node-dtls-client has no UDP socket to filter (library changed?)');
  const family = remote.address.includes(':') ? 'ipv6' : 'ipv4';
  const server = new BlockList(); // compares addresses in their canonical form
  server.addAddress(remote.address, family);
  const listeners = udp.listeners('message') as Array<(msg: Buffer, rinfo: RemoteInfo) => void>;
  let handshaking = true;
  let serverCcs = false;
  socket.once('connected', () => void (handshaking = false));
  udp.removeAllListeners('message');
  udp.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
    if (rinfo.port !== remote.port || !server.check(rinfo.address, family)) return;
    if (handshaking && !serverCcs) {
      const records = parseRecords(msg);
      const ccs = records.findIndex((r) => r.type === ContentType.changeCipherSpec && r.epoch === 0);
      if (records[0] !== undefined && records[0].epoch !== 0) return;
      if (ccs >= 0) serverCcs = true;
    }
    for (const l of listeners) l.call(udp, msg, rinfo);
  });
}

/** node-dtls-client reports a server alert as "received fatal alert: <name>". */
function isFinal(err: Error): boolean {
  return /fatal alert|handshake failed|not implemented/i.test(err.message);
}

function explain(err: Error, o: DtlsClientOptions, where: string): string {
  if (/bad_record_mac|decrypt_error|handshake failed/i.test(err.message)) {
    return `dtls: handshake with ${where} failed: the server did not accept the key of identity "${o.identity}" (wrong PSK, or an identity it does not know?) [${err.message}]`;
  }
  if (/unknown_psk_identity/.test(err.message)) return `dtls: handshake with ${where} failed: the server does not know identity "${o.identity}"`;
  if (/handshake_failure|protocol_version|illegal_parameter/.test(err.message)) {
    return `dtls: handshake with ${where} failed: the server refused our parameters (cipher suite or version) [${err.message}]`;
  }
  return `dtls: handshake with ${where} failed: ${err.message}`;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });
}

/**
 * Connects to a DTLS PSK server, retrying the handshake with bounded
 * exponential back-off and jitter. Rejects with `DTLS_HANDSHAKE_FAILED`: the
 * message says whether the server rejected the key/identity (a fatal alert
 * ending two attempts in a row, or the last attempt) or
 * never completed a handshake (unreachable, or every attempt lost a datagram).
 *
 * @example
 * const t = await connectDtls({ host: '127.0.0.1', port: 5684, identity: 'dev-1', key });
 * await t.send(bytes, t.remote);
 */
export async function connectDtls(o: DtlsClientOptions): Promise<DtlsClientTransport> {
  if (o === null || typeof o !== 'object') throw new CoapfwError('INVALID_ARGUMENT', 'dtls client: options are required');
  if (typeof o.host !== 'string' || o.host === '') throw new CoapfwError('INVALID_ARGUMENT', 'dtls client: host must be a non-empty string');
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new CoapfwError('INVALID_ARGUMENT', `dtls client: port must be 1..65535, got ${o.port}`);
  if (typeof o.identity !== 'string' || o.identity === '') throw new CoapfwError('INVALID_ARGUMENT', 'dtls client: identity must be a non-empty string');
  if (!(o.key instanceof Uint8Array) || o.key.length === 0) throw new CoapfwError('INVALID_ARGUMENT', 'dtls client: key must be a non-empty Uint8Array');
  if (o.localPort !== undefined && (!Number.isInteger(o.localPort) || o.localPort < 1 || o.localPort > 65535)) {
    throw new CoapfwError('INVALID_ARGUMENT', `dtls client: localPort must be 1..65535, got ${o.localPort}`);
  }
  const retries = o.retries ?? 8;
  if (!Number.isInteger(retries) || retries < 0) throw new CoapfwError('INVALID_ARGUMENT', `dtls client: retries must be an integer >= 0, got ${retries}`);
  const timeout = Math.max(100, o.handshakeTimeoutMs ?? 2000);
  const base = o.backoffMs ?? 200;
  const cap = o.maxBackoffMs ?? 5000;
  const random = o.random ?? Math.random;

  let address = o.host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(address) === 0) {
    try {
      address = (await lookup(address)).address;
    } catch (e) {
      throw new CoapfwError('DTLS_HANDSHAKE_FAILED', `dtls: cannot resolve host "${o.host}"`, { cause: e });
    }
  }
  const remote: Peer = { address, port: o.port };
  const where = fmt(remote);
  let last: Error = new Error('no attempt made');
  let finals = 0; // consecutive attempts that ended with a fatal alert
  for (let i = 0; i <= retries; i++) {
    if (o.signal?.aborted) throw new CoapfwError('ABORTED', `dtls: connection to ${where} aborted`, { cause: o.signal.reason, peer: remote });
    try {
      return new DtlsClientTransport(await attempt(remote, o, timeout), remote);
    } catch (e) {
      last = e as Error;
      if (o.signal?.aborted) throw new CoapfwError('ABORTED', `dtls: connection to ${where} aborted`, { cause: o.signal.reason, peer: remote });
      // An unauthenticated alert may be forged: believe it when the next attempt ends the same way.
      finals = isFinal(last) ? finals + 1 : 0;
      if (finals >= 2 || (finals === 1 && i === retries)) throw new CoapfwError('DTLS_HANDSHAKE_FAILED', explain(last, o, where), { cause: last, peer: remote });
    }
    if (i < retries) {
      // Exponential back-off with "equal jitter": half fixed, half random.
      const b = Math.min(cap, base * 2 ** i);
      await sleep(b / 2 + random() * (b / 2), o.signal);
    }
  }
  throw new CoapfwError(
    'DTLS_HANDSHAKE_FAILED',
    `dtls: no handshake with ${where} after ${retries + 1} attempts of ${timeout} ms (server unreachable or not speaking DTLS, datagrams lost, or a wrong PSK or unknown identity on a server that drops bad Finished records silently, as OpenSSL does) [${last.message}]`,
    { cause: last, peer: remote },
  );
}
