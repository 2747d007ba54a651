/**
 * The UDP socket on node:dgram: what the transport uses where coapfw's
 * native socket is not built (another OS, no compiler at install) or not
 * wanted (`native: false`, COAPFW_NATIVE_UDP=0).
 */
import { createSocket, type Socket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { Peer } from '../core/transport.js';
import { normalizeAddress, type SocketEvents, type SocketSpec, type UdpSocket } from './udp-socket.js';

/** Bind a node:dgram socket; rejects with the bind's errno error. */
export function openDgramSocket(spec: SocketSpec, events: SocketEvents): Promise<UdpSocket> {
  const socket = createSocket({ type: spec.v6 ? 'udp6' : 'udp4', ipv6Only: spec.ipv6Only, reuseAddr: spec.reuseAddr, lookup: literalLookup });
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.bind(spec.port, spec.host, () => {
      if (spec.recvBufferSize !== undefined) socket.setRecvBufferSize(spec.recvBufferSize);
      const ready = (): void => {
        socket.off('error', onError);
        resolve(new DgramSocket(socket, spec.v6, spec.connect !== undefined, events));
      };
      const peer = spec.connect;
      if (peer === undefined) return ready();
      socket.connect(peer.port, mapAddress(spec.v6, peer.address), ready);
    });
  });
}

class DgramSocket implements UdpSocket {
  readonly backend = 'dgram';

  constructor(
    private readonly socket: Socket,
    private readonly v6: boolean,
    private readonly connected: boolean,
    events: SocketEvents,
  ) {
    const peers = new PeerCache();
    socket.on('message', (msg, rinfo) => {
      // Port 0 cannot be answered (a send to it throws): such a datagram is spoofed or broken.
      if (rinfo.port === 0) return;
      // A plain Uint8Array view (no copy): dgram allocates a Buffer per datagram (UDPWrap::OnRecv),
      // and what the layers above slice out of it is then never a Buffer.
      events.datagram(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), peers.get(rinfo.address, rinfo.port));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => events.error(err));
  }

  send(data: Uint8Array, peer: Peer | undefined, done?: (err: Error | null) => void): void {
    if (this.connected || peer === undefined) this.socket.send(data, done);
    else this.socket.send(data, peer.port, mapAddress(this.v6, peer.address), done);
  }

  address(): Peer {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** A dual-stack IPv6 socket reaches IPv4 peers through their mapped address. */
function mapAddress(v6: boolean, address: string): string {
  return v6 && !address.includes(':') ? `::ffff:${address}` : address;
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
