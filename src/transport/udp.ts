/**
 * UDP transport over node:dgram, IPv4 or IPv6. One socket per transport.
 */
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { CoapfwError } from '../errors.js';
import type { DatagramHandler, Peer, Transport } from './types.js';

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
}

/** A bound UDP socket as a {@link Transport}. */
export class UdpTransport implements Transport {
  private handler: DatagramHandler = () => {};
  private closed = false;

  private constructor(
    private readonly socket: Socket,
    private readonly ipv6: boolean,
  ) {
    socket.on('message', (msg, rinfo) => {
      // Port 0 cannot be answered (a send to it throws): such a datagram is spoofed or broken.
      if (rinfo.port === 0) return;
      this.handler(msg, { address: normalizeAddress(rinfo.address), port: rinfo.port });
    });
    // A UDP socket reports ICMP errors of earlier sends here; they are not fatal for a server.
    socket.on('error', () => {});
  }

  /** Bind a socket and resolve once it is listening. */
  static bind(options: UdpOptions = {}): Promise<UdpTransport> {
    const host = options.host ?? '127.0.0.1';
    const socket = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ipv6Only: options.ipv6Only ?? false });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        socket.close();
        reject(new CoapfwError('IO_ERROR', `udp: cannot bind ${host}:${options.port ?? 0}: ${err.message}`, { cause: err }));
      };
      socket.once('error', onError);
      socket.bind(options.port ?? 0, host, () => {
        socket.off('error', onError);
        if (options.recvBufferSize !== undefined) socket.setRecvBufferSize(options.recvBufferSize);
        resolve(new UdpTransport(socket, isIPv6(host)));
      });
    });
  }

  send(data: Uint8Array, peer: Peer): Promise<void> {
    if (this.closed) return Promise.reject(new CoapfwError('TRANSPORT_CLOSED', 'udp: transport is closed'));
    return new Promise((resolve, reject) => {
      const fail = (err: Error): void => reject(new CoapfwError('IO_ERROR', `udp: send to ${peer.address}:${peer.port} failed: ${err.message}`, { cause: err }));
      try {
        this.socket.send(data, peer.port, this.mapAddress(peer.address), (err) => (err ? fail(err) : resolve()));
      } catch (err) {
        fail(err as Error);
      }
    });
  }

  post(data: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    try {
      this.socket.send(data, peer.port, this.mapAddress(peer.address));
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

/** `::ffff:127.0.0.1` (a v4 peer on a dual-stack socket) is reported as `127.0.0.1`. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
