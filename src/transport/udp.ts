/**
 * UDP transport over node:dgram, IPv4 or IPv6. One socket per transport.
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { CoapfwError } from '../errors.js';
import type { DatagramHandler, Peer, Transport } from '../core/transport.js';

/** Options for {@link UdpTransport.bind}. */
export interface UdpOptions {
  /** Local address; `::` or `::1` selects an IPv6 socket. Default `127.0.0.1`. */
  readonly host?: string;
  /** Local port, 0 for an ephemeral one. Default 0. */
  readonly port?: number;
  /** Kernel receive buffer in bytes; bursts of many devices need more than the default. */
  readonly recvBufferSize?: number;
  /** For an IPv6 socket bound to `::`, refuse IPv4-mapped peers. Default false (dual stack). */
  readonly ipv6Only?: boolean;
  /**
   * SO_REUSEADDR, so that sockets bound to multicast groups can share the
   * port (the gateway's discovery). Default false: a second server on the
   * port must fail with ADDRESS_IN_USE.
   */
  readonly reuseAddr?: boolean;
  /**
   * A client talking to one server: connect(2) the socket to it. The kernel
   * then drops datagrams from anyone else, and reports the ICMP errors our
   * sends draw (port or host unreachable), which an unconnected UDP socket
   * never sees: they go to `onUnreachable`. Sends to another peer fail.
   */
  readonly connect?: Peer;
  /** Called with an UNREACHABLE error for each ICMP error on a connected socket. */
  readonly onUnreachable?: (e: CoapfwError) => void;
}

// ICMP errors as a connected UDP socket reports them (RFC 1122 §4.1.3.3: passed up to the application).
const ICMP: Record<string, string> = {
  ECONNREFUSED: 'nothing listens on %s (ICMP port unreachable)',
  EHOSTUNREACH: '%s: host unreachable (ICMP)',
  ENETUNREACH: '%s: network unreachable (ICMP)',
  EHOSTDOWN: '%s: host is down (ICMP)',
};

/** A bound UDP socket as a {@link Transport}. */
export class UdpTransport implements Transport {
  /** node:dgram hands each 'message' its own Buffer (UDPWrap::OnRecv allocates one per datagram). */
  readonly freshDatagrams = true;
  private handler: DatagramHandler = () => {};
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly ipv6: boolean,
    private readonly connected?: Peer,
    onUnreachable?: (e: CoapfwError) => void,
  ) {
    const peers = new PeerCache();
    socket.on('message', (msg, rinfo) => {
      // Port 0 cannot be answered (a send to it throws): such a datagram is spoofed or broken.
      if (rinfo.port === 0) return;
      // A plain Uint8Array view (no copy), so that what the layers above slice out of it is never a Buffer.
      this.handler(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), peers.get(rinfo.address, rinfo.port));
    });
    // A UDP socket reports ICMP errors of earlier sends here; they are not fatal for a server.
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const what = connected && ICMP[err.code ?? ''];
      if (!what || !onUnreachable) return;
      onUnreachable(new CoapfwError('UNREACHABLE', what.replace('%s', peerText(connected)), { cause: err, peer: connected }));
    });
  }

  /** Bind a socket and resolve once it is listening. */
  static bind(options: UdpOptions = {}): Promise<UdpTransport> {
    const host = options.host ?? '127.0.0.1';
    // isIP tries IPv4 first: isIPv6 alone compiles Node's IPv6 expression, ~10 ms of a CLI's start-up.
    const v6 = isIP(host) === 6;
    const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: options.ipv6Only ?? false, reuseAddr: options.reuseAddr ?? false, lookup: literalLookup });
    return new Promise((resolve, reject) => {
      const port = options.port ?? 0;
      const onError = (err: NodeJS.ErrnoException): void => {
        socket.close();
        const where = peerText({ address: host, port });
        if (err.code === 'EADDRINUSE') reject(new CoapfwError('ADDRESS_IN_USE', `udp: port ${port} is in use (binding ${where})`, { cause: err }));
        else reject(new CoapfwError('IO_ERROR', `udp: cannot bind ${where}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.bind(port, host, () => {
        if (options.recvBufferSize !== undefined) socket.setRecvBufferSize(options.recvBufferSize);
        const peer = options.connect;
        const ready = (): void => {
          socket.off('error', onError);
          resolve(new UdpTransport(socket, v6, peer, options.onUnreachable));
        };
        if (peer === undefined) return ready();
        socket.connect(peer.port, v6 && !peer.address.includes(':') ? `::ffff:${peer.address}` : peer.address, ready);
      });
    });
  }

  send(data: Uint8Array, peer: Peer): Promise<void> {
    if (this.closed) return Promise.reject(new CoapfwError('TRANSPORT_CLOSED', 'udp: transport is closed', { peer: { address: peer.address, port: peer.port } }));
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => reject(new CoapfwError('IO_ERROR', `udp: send to ${peer.address}:${peer.port} failed: ${err.message}`, { cause: err, peer: { address: peer.address, port: peer.port } }));
      try {
        if (this.connected) {
          if (!this.isConnectedPeer(peer)) return fail(new Error(`the socket is connected to ${peerText(this.connected)}`));
          this.socket.send(data, (err) => (err ? fail(err) : resolve()));
        } else this.socket.send(data, peer.port, this.mapAddress(peer.address), (err) => (err ? fail(err) : resolve()));
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  post(data: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    try {
      if (!this.connected) this.socket.send(data, peer.port, this.mapAddress(peer.address));
      else if (this.isConnectedPeer(peer)) this.socket.send(data);
    } catch {
      // Invalid address or port: nothing can be sent there, and a server must not die of it.
    }
  }

  onMessage(handler: DatagramHandler): void {
    this.handler = handler;
  }

  address(): Peer {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  private isConnectedPeer(peer: Peer): boolean {
    return this.connected !== undefined && peer.port === this.connected.port && normalizeAddress(peer.address) === normalizeAddress(this.connected.address);
  }

  /** A dual-stack IPv6 socket reaches IPv4 peers through their mapped address. */
  private mapAddress(address: string): string {
    return this.ipv6 && !address.includes(':') ? `::ffff:${address}` : address;
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/**
 * One Peer object per remote address and port, so that the layers above can
 * key their tables by the object (the endpoint caches each peer's key) rather
 * than build a string per datagram. Bounded: past `max` peers it starts over.
 */
class PeerCache {
  private readonly byAddress = new Map<string, Map<number, Peer>>();
  private count = 0;

  constructor(private readonly max = 4096) {}

  get(address: string, port: number): Peer {
    let ports = this.byAddress.get(address);
    if (ports === undefined) {
      if (this.count >= this.max) this.clear();
      ports = new Map();
      this.byAddress.set(address, ports);
    }
    let peer = ports.get(port);
    if (peer === undefined) {
      if (this.count >= this.max) {
        this.clear();
        this.byAddress.set(address, ports);
      }
      peer = { address: normalizeAddress(address), port };
      ports.set(port, peer);
      this.count++;
    }
    return peer;
  }

  private clear(): void {
    for (const ports of this.byAddress.values()) ports.clear();
    this.byAddress.clear();
    this.count = 0;
  }
}

const literalFamilies = new Map<string, number>();
const MAX_LITERALS = 4096;

/**
 * dgram resolves the address of every send through `dns.lookup`, which for
 * an IP literal answers on the next tick: a deferral and several closures
 * per datagram. Our peers are always IP literals (they come from received
 * datagrams or from a client's own resolution), so answer those at once.
 */
function literalLookup(host: string, opts: LookupOneOptions | number, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  // isIP runs a regular expression: remember the answer for the peers we send to again and again.
  let family = literalFamilies.get(host);
  if (family === undefined) {
    family = isIP(host);
    if (family !== 0) {
      if (literalFamilies.size >= MAX_LITERALS) literalFamilies.clear();
      literalFamilies.set(host, family);
    }
  }
  if (family !== 0) return cb(null, host, family);
  dnsLookup(host, { family: typeof opts === 'number' ? opts : (opts.family ?? 0) }, cb);
}

function peerText(p: Peer): string {
  return p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}

let ipv6: Promise<boolean> | undefined;

/**
 * Whether this host can open an IPv6 UDP socket at all (a kernel without
 * IPv6, or with it disabled, fails with EAFNOSUPPORT or EADDRNOTAVAIL). Only
 * then may a server meant for `::` fall back to `0.0.0.0`; any other bind error
 * (a port in use) must be reported, not hidden by the fallback.
 */
export function ipv6Available(): Promise<boolean> {
  ipv6 ??= new Promise((resolve) => {
    let socket: Socket;
    try {
      socket = createSocket({ type: 'udp6' });
    } catch {
      return resolve(false);
    }
    socket.once('error', () => {
      socket.close();
      resolve(false);
    });
    socket.bind(0, '::', () => socket.close(() => resolve(true)));
  });
  return ipv6;
}

/** `::ffff:127.0.0.1` (a v4 peer on a dual-stack socket) is reported as `127.0.0.1`. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
