/**
 * A user-space UDP relay that imposes a path on any UDP server (ours,
 * libcoap's coap-server-notls, tftp-hpa's in.tftpd), so that all are
 * measured through the same impairments in the same run (there is no netem
 * here). Clients send to the relay's port; each client address gets its own
 * upstream socket, so the server sees one peer per client (and TFTP's
 * per-transfer server port works: replies from any server port go back to
 * the client from a relay port mapped to it).
 *
 * Impairments: one-way delay (RTT/2 each way), seeded loss each way, and a
 * shared downstream bottleneck (server to clients): a rate in bit/s with a
 * drop-tail queue bounded in packets. Upstream (requests) is delay and loss only.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { mulberry32 } from '../src/core/prng.js';

/** Path settings. */
export interface RelayOptions {
  /** Where the server listens. */
  readonly target: { address: string; port: number };
  readonly rttMs?: number;
  /** Loss probability client -> server. */
  readonly lossUp?: number;
  /** Loss probability server -> client. */
  readonly lossDown?: number;
  /** Downstream bottleneck in bit/s; 0 or undefined: none. */
  readonly rateBps?: number;
  /** Bottleneck queue in packets (drop-tail). Default 64. */
  readonly queuePackets?: number;
  readonly seed?: number;
  /** Called for every datagram as it enters the relay (tracing a run); `dropped` when loss took it. */
  readonly onPacket?: (dir: 'up' | 'down', data: Uint8Array, dropped: boolean) => void;
}

/** What the relay did. */
export interface RelayStats {
  up: number;
  down: number;
  lostUp: number;
  lostDown: number;
  queueDrops: number;
  downBytes: number;
}

interface Flow {
  readonly client: RemoteInfo;
  /** Upstream socket: the server sees this as the client. */
  readonly upstream: Socket;
  /** The server port that last answered (TFTP moves to a port per transfer, RFC 1350 §4). */
  serverPort?: number;
}

/** A running relay. */
export class UdpRelay {
  readonly stats: RelayStats = { up: 0, down: 0, lostUp: 0, lostDown: 0, queueDrops: 0, downBytes: 0 };
  private readonly flows = new Map<string, Flow>();
  private readonly random: () => number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private queued = 0;
  private linkFreeAt = 0;
  private closed = false;

  private constructor(
    private readonly front: Socket,
    private readonly o: RelayOptions,
  ) {
    this.random = mulberry32(o.seed ?? 1);
    front.on('message', (data, rinfo) => this.fromClient(data, rinfo));
  }

  /** Bind on 127.0.0.1 (ephemeral port) and start relaying. */
  static async start(o: RelayOptions): Promise<UdpRelay> {
    const s = createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', () => resolve()));
    s.setRecvBufferSize(8 * 1024 * 1024);
    s.setSendBufferSize(8 * 1024 * 1024);
    return new UdpRelay(s, o);
  }

  /** The port clients send to. */
  get port(): number {
    return this.front.address().port;
  }

  private later(ms: number, fn: () => void): void {
    if (ms <= 0) {
      fn();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private fromClient(data: Buffer, rinfo: RemoteInfo): void {
    this.stats.up++;
    const key = `${rinfo.address}:${rinfo.port}`;
    let flow = this.flows.get(key);
    if (flow === undefined) {
      const upstream = createSocket('udp4');
      upstream.bind(0, '127.0.0.1');
      upstream.on('message', (d, r) => {
        flow!.serverPort = r.port;
        this.fromServer(d, flow!);
      });
      upstream.on('error', () => undefined); // ICMP port unreachable after a server exits: not ours to report
      flow = { client: rinfo, upstream };
      this.flows.set(key, flow);
    }
    const lostUp = this.random() < (this.o.lossUp ?? 0);
    this.o.onPacket?.('up', data, lostUp);
    if (lostUp) {
      this.stats.lostUp++;
      return;
    }
    const f = flow;
    // TFTP answers from a new port per transfer; later client packets go to the port that last answered.
    const dst = f.serverPort ?? this.o.target.port;
    this.later((this.o.rttMs ?? 0) / 2, () => f.upstream.send(data, dst, this.o.target.address));
  }

  private fromServer(data: Buffer, flow: Flow): void {
    this.stats.down++;
    const lostDown = this.random() < (this.o.lossDown ?? 0);
    this.o.onPacket?.('down', data, lostDown);
    if (lostDown) {
      this.stats.lostDown++;
      return;
    }
    const deliver = (): void => {
      this.stats.downBytes += data.length;
      this.front.send(data, flow.client.port, flow.client.address);
    };
    const rate = this.o.rateBps ?? 0;
    const delay = (this.o.rttMs ?? 0) / 2;
    if (rate <= 0) {
      this.later(delay, deliver);
      return;
    }
    if (this.queued >= (this.o.queuePackets ?? 64)) {
      this.stats.queueDrops++;
      return;
    }
    // Serialisation at the bottleneck: packets leave one after another at `rate`.
    const now = performance.now();
    const start = Math.max(now, this.linkFreeAt);
    this.linkFreeAt = start + ((data.length + 28) * 8 * 1000) / rate;
    this.queued++;
    this.later(this.linkFreeAt - now, () => {
      this.queued--;
      this.later(delay, deliver);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const f of this.flows.values()) f.upstream.close();
    await new Promise<void>((resolve) => this.front.close(() => resolve()));
  }
}
