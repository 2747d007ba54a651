/**
 * What {@link UdpTransport} needs of a UDP socket. Two implement it: coapfw's
 * native socket (recvmmsg/sendmmsg, `udp-native.ts`), used where it is built,
 * and node:dgram (`udp-dgram.ts`), used everywhere else.
 */
import type { Peer } from '../core/transport.js';

/** How to open the socket: the transport's options, checked. */
export interface SocketSpec {
  readonly v6: boolean;
  readonly host: string;
  readonly port: number;
  readonly ipv6Only: boolean;
  readonly reuseAddr: boolean;
  readonly recvBufferSize?: number;
  /** connect(2) to this IP literal. */
  readonly connect?: Peer;
}

/** Where the socket delivers what it hears. */
export interface SocketEvents {
  /** One datagram, in a buffer of its own that the socket never touches again. */
  datagram(data: Uint8Array, peer: Peer): void;
  /** An error the kernel reported after a send (ICMP errors, on a connected socket). */
  error(err: NodeJS.ErrnoException): void;
}

/** An open, bound UDP socket. */
export interface UdpSocket {
  /** Which implementation carries the datagrams. */
  readonly backend: 'native' | 'dgram';
  /**
   * Send one datagram to `peer` (an IP literal), or to the connected peer
   * when undefined. Throws for an argument that cannot be sent at all;
   * `done` hears the outcome of the send itself.
   */
  send(data: Uint8Array, peer: Peer | undefined, done?: (err: Error | null) => void): void;
  address(): Peer;
  close(): Promise<void>;
}

/** `::ffff:127.0.0.1` (a v4 peer on a dual-stack socket) is reported as `127.0.0.1`. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export function peerText(p: Peer): string {
  return p.address.includes(':') ? `[${p.address}]:${p.port}` : `${p.address}:${p.port}`;
}
