/**
 * UDP transport, IPv4 or IPv6, one socket per transport. The socket is
 * coapfw's native one (recvmmsg, native/udp.c) where it was built at
 * install, else node:dgram; both behave the same to the layers above.
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup } from 'node:dns';
import { isIP } from 'node:net';
import { CoapfwError } from '../errors.js';
import type { DatagramHandler, Peer, Transport } from '../core/transport.js';
import { openDgramSocket } from './udp-dgram.js';
import { loadNative, openNativeSocket } from './udp-native.js';
import { normalizeAddress, peerText, type SocketEvents, type SocketSpec, type UdpSocket } from './udp-socket.js';

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
  /**
   * The socket: `true` insists on coapfw's native one (DRIVER_MISSING where it is
   * not built), `false` takes node:dgram. Default: the native one where it is
   * built, unless the environment sets COAPFW_NATIVE_UDP=0.
   */
  readonly native?: boolean;
}

// ICMP errors as a connected UDP socket reports them (RFC 1122 §4.1.3.3: passed up to the application).
const ICMP: Record<string, string> = {
  ECONNREFUSED: 'nothing listens on %s (ICMP port unreachable)',
  EHOSTUNREACH: '%s: host unreachable (ICMP)',
  ENETUNREACH: '%s: network unreachable (ICMP)',
  EHOSTDOWN: '%s: host is down (ICMP)',
};

/** Whether coapfw's native UDP socket is built and allowed here (see {@link UdpOptions.native}). */
export function nativeUdpAvailable(): boolean {
  return loadNative() !== undefined;
}

/** A bound UDP socket as a {@link Transport}. */
export class UdpTransport implements Transport {
  /** Both sockets hand each datagram over in a buffer of its own. */
  readonly freshDatagrams = true;
  private handler: DatagramHandler = () => {};
  private closed = false;
  private socket: UdpSocket | undefined;

  private constructor(
    private readonly connected: Peer | undefined,
    private readonly onUnreachable: ((e: CoapfwError) => void) | undefined,
  ) {}

  /** Which socket carries the datagrams: coapfw's native one or node:dgram. */
  get backend(): 'native' | 'dgram' {
    return this.open().backend;
  }

  /** Bind a socket and resolve once it is listening. */
  static async bind(options: UdpOptions = {}): Promise<UdpTransport> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 0;
    // isIP tries IPv4 first: isIPv6 alone compiles Node's IPv6 expression, ~10 ms of a CLI's start-up.
    const v6 = isIP(host) === 6;
    const native = options.native === false ? undefined : loadNative();
    if (options.native === true && native === undefined) {
      throw new CoapfwError(
        'DRIVER_MISSING',
        process.env.COAPFW_NATIVE_UDP === '0'
          ? 'udp: the native socket is turned off (COAPFW_NATIVE_UDP=0)'
          : "udp: coapfw's native socket is not built here (`npm rebuild coapfw` builds it: Linux, python3, make and a C compiler)",
      );
    }
    const connect = options.connect && (await literalPeer(options.connect, v6));
    // A host name (`localhost`) is bound as dgram binds it: its first address of the socket's family.
    const local = isIP(host) !== 0 ? host : (await literalPeer({ address: host, port }, v6).catch(() => ({ address: host }))).address;
    const spec: SocketSpec = { v6, host: local, port, ipv6Only: options.ipv6Only ?? false, reuseAddr: options.reuseAddr ?? false, recvBufferSize: options.recvBufferSize, connect };
    const t = new UdpTransport(options.connect, options.onUnreachable);
    const events: SocketEvents = { datagram: (data, peer) => t.handler(data, peer), error: (err) => t.onSocketError(err) };
    try {
      t.socket = native !== undefined ? openNativeSocket(native, spec, events) : await openDgramSocket(spec, events);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      const where = peerText({ address: host, port });
      if (err.code === 'EADDRINUSE') throw new CoapfwError('ADDRESS_IN_USE', `udp: port ${port} is in use (binding ${where})`, { cause: err });
      throw new CoapfwError('IO_ERROR', `udp: cannot bind ${where}: ${err.message}`, { cause: err });
    }
    return t;
  }

  send(data: Uint8Array, peer: Peer): Promise<void> {
    if (this.closed) return Promise.reject(new CoapfwError('TRANSPORT_CLOSED', 'udp: transport is closed', { peer: { address: peer.address, port: peer.port } }));
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => reject(new CoapfwError('IO_ERROR', `udp: send to ${peer.address}:${peer.port} failed: ${err.message}`, { cause: err, peer: { address: peer.address, port: peer.port } }));
      try {
        if (this.connected && !this.isConnectedPeer(peer)) return fail(new Error(`the socket is connected to ${peerText(this.connected)}`));
        this.open().send(data, this.connected ? undefined : peer, (err) => (err ? fail(err) : resolve()));
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  post(data: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    try {
      if (!this.connected) this.open().send(data, peer);
      else if (this.isConnectedPeer(peer)) this.open().send(data, undefined);
    } catch {
      // Invalid address or port: nothing can be sent there, and a server must not die of it.
    }
  }

  onMessage(handler: DatagramHandler): void {
    this.handler = handler;
  }

  address(): Peer {
    return this.open().address();
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    return this.open().close();
  }

  private open(): UdpSocket {
    return this.socket!; // set by bind() before anyone holds the transport
  }

  /** A UDP socket reports ICMP errors of earlier sends here; they are not fatal for a server. */
  private onSocketError(err: NodeJS.ErrnoException): void {
    const connected = this.connected;
    const what = connected && ICMP[err.code ?? ''];
    if (!what || !this.onUnreachable) return;
    this.onUnreachable(new CoapfwError('UNREACHABLE', what.replace('%s', peerText(connected)), { cause: err, peer: connected }));
  }

  private isConnectedPeer(peer: Peer): boolean {
    return this.connected !== undefined && peer.port === this.connected.port && normalizeAddress(peer.address) === normalizeAddress(this.connected.address);
  }
}

/** The connect target as an IP literal (the native socket takes only literals), resolved as dgram would. */
async function literalPeer(peer: Peer, v6: boolean): Promise<Peer> {
  if (isIP(peer.address) !== 0) return peer;
  const address = await new Promise<string>((resolve, reject) => dnsLookup(peer.address, { family: v6 ? 0 : 4 }, (err, a) => (err ? reject(err) : resolve(a))));
  return { address, port: peer.port };
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

