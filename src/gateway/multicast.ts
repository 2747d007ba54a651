/**
 * Receiving CoAP multicast (RFC 7252 §8, RFC 7390): sockets bound to the
 * All-CoAP-Nodes groups (224.0.1.187, ff02::fd on each interface, ff05::fd)
 * on the gateway's port, joined on every interface that can multicast.
 *
 * A socket bound to a group address receives only datagrams sent to that
 * group, which is how the gateway knows a request came by multicast (Node
 * gives no destination address per datagram). Answers go out through the
 * unicast socket, so that their source is the gateway's own address
 * (§8.2: the response is unicast). The group sockets share the port with the
 * unicast one (SO_REUSEADDR on both).
 *
 * Linux also hands a multicast datagram to a wildcard unicast socket on the
 * same port (IPv6 always, IPv4 for an IPv4 wildcard socket). So the unicast
 * transport is wrapped: a NON datagram waits two turns of the event loop
 * (one poll phase for the group socket's copy to be read), and is dropped if
 * a group socket saw the same bytes from the same source, so that the
 * request is answered once, by the multicast rules. Confirmable traffic
 * passes at once.
 */
import { createSocket, type Socket } from 'node:dgram';
import { multicastInterfaces } from '../client/discover.js';
import { MessageType } from '../codec/numbers.js';
import { peekHeader } from '../codec/message.js';
import type { DatagramHandler, Peer, Transport } from '../core/transport.js';
import { CoapfwError } from '../errors.js';

/** The All-CoAP-Nodes addresses (RFC 7252 §12.8). */
export const ALL_COAP_NODES = { ipv4: '224.0.1.187', linkLocal: 'ff02::fd', siteLocal: 'ff05::fd' } as const;

/** Options of {@link MulticastListener.open}. */
export interface MulticastOptions {
  /** The port (the gateway's CoAP port). */
  readonly port: number;
  /** Groups to join. Default all three of {@link ALL_COAP_NODES}. */
  readonly groups?: readonly string[];
  /** Interface names to join on. Default every interface with an address that is not loopback. */
  readonly interfaces?: readonly string[];
  /** Told about socket errors (a vanished interface ...), which are never fatal. */
  readonly onError?: (e: CoapfwError) => void;
}

/** One group joined on one interface. */
export interface Membership {
  readonly group: string;
  readonly iface: string;
}

const SEEN_MS = 2000;

/** The group sockets, and the unicast transport wrapped against their copies. */
export class MulticastListener {
  /** What the gateway's multicast endpoint runs on: group datagrams in, answers out by unicast. */
  readonly transport: Transport;
  /** The unicast transport, without the copies of multicast datagrams. */
  readonly unicast: Transport;
  readonly joined: Membership[] = [];
  private readonly sockets: Socket[] = [];
  private readonly seen = new Map<string, number>();
  private groupHandler: DatagramHandler = () => {};
  private unicastHandler: DatagramHandler = () => {};

  private constructor(inner: Transport) {
    const self = this;
    this.transport = {
      send: (data, peer) => inner.send(data, peer),
      post: inner.post ? (data, peer) => inner.post!(data, peer) : undefined,
      onMessage: (h) => void (self.groupHandler = h),
      address: () => inner.address(),
      close: () => self.close(),
    };
    this.unicast = {
      send: (data, peer) => inner.send(data, peer),
      post: inner.post ? (data, peer) => inner.post!(data, peer) : undefined,
      onMessage: (h) => void (self.unicastHandler = h),
      address: () => inner.address(),
      close: () => inner.close(),
    };
    inner.onMessage((data, peer) => this.fromUnicast(data, peer));
  }

  /**
   * Join the groups on `unicast`'s port. Resolves with the listener even when
   * some memberships fail (an interface without that family): `joined` says
   * which hold. The unicast transport must have been bound with SO_REUSEADDR.
   */
  static async open(unicast: Transport, options: MulticastOptions): Promise<MulticastListener> {
    const l = new MulticastListener(unicast);
    const groups = options.groups ?? [ALL_COAP_NODES.ipv4, ALL_COAP_NODES.linkLocal, ALL_COAP_NODES.siteLocal];
    const ifaces = multicastInterfaces(options.interfaces);
    const report = (e: unknown, what: string): void => options.onError?.(new CoapfwError('IO_ERROR', `multicast: ${what}: ${(e as Error).message}`, { cause: e }));
    for (const group of groups) {
      const v6 = group.includes(':');
      const linkScoped = v6 && /^ff[0-9a-f]2:/i.test(group);
      const targets = ifaces.filter((i) => (v6 ? i.v6 : i.v4 !== undefined));
      // A link-scoped group needs one socket per interface (its address carries the zone).
      const binds = linkScoped ? targets.map((i) => ({ host: `${group}%${i.name}`, on: [i] })) : targets.length > 0 ? [{ host: group, on: targets }] : [];
      for (const b of binds) {
        try {
          const s = await bindGroup(v6, b.host, options.port, (e) => report(e, `${b.host} socket error`));
          for (const i of b.on) {
            try {
              s.addMembership(group, v6 ? `::%${i.name}` : i.v4!);
              l.joined.push({ group, iface: i.name });
            } catch (e) {
              report(e, `joining ${group} on ${i.name}`);
            }
          }
          s.on('message', (msg, rinfo) => l.fromGroup(new Uint8Array(msg), { address: rinfo.address, port: rinfo.port }));
          l.sockets.push(s);
        } catch (e) {
          report(e, `binding ${b.host}:${options.port}`);
        }
      }
    }
    return l;
  }

  /** Leave the groups and close their sockets (the unicast transport stays open). */
  async close(): Promise<void> {
    const all = this.sockets.splice(0);
    await Promise.all(all.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  private fromGroup(data: Uint8Array, peer: Peer): void {
    if (peer.port === 0) return;
    const now = Date.now();
    this.seen.set(keyOf(data, peer), now);
    if (this.seen.size > 4096) this.seen.delete(this.seen.keys().next().value!);
    this.groupHandler(data, peer);
  }

  private fromUnicast(data: Uint8Array, peer: Peer): void {
    const h = peekHeader(data);
    if (this.sockets.length === 0 || h === undefined || h.type !== MessageType.NON) return this.unicastHandler(data, peer);
    // Two turns: the group socket's copy, queued by the kernel in the same delivery, is read in between.
    setImmediate(() =>
      setImmediate(() => {
        const key = keyOf(data, peer);
        const at = this.seen.get(key);
        if (at !== undefined && Date.now() - at < SEEN_MS) return; // a multicast request: its group socket has it
        this.unicastHandler(data, peer);
      }),
    );
  }
}

function keyOf(data: Uint8Array, peer: Peer): string {
  const address = peer.address.startsWith('::ffff:') ? peer.address.slice(7) : peer.address.replace(/%.*$/, '');
  return `${address}|${peer.port}|${Buffer.from(data).toString('base64')}`;
}

function bindGroup(v6: boolean, host: string, port: number, onError: (e: unknown) => void): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = createSocket({ type: v6 ? 'udp6' : 'udp4', reuseAddr: true });
    s.once('error', reject);
    s.bind(port, host, () => {
      s.off('error', reject);
      s.on('error', onError);
      resolve(s);
    });
  });
}
