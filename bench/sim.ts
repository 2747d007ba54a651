/**
 * Q-Block2 between our client and server on a virtual clock, through the
 * path model of bench/relay.ts (delay, seeded loss each way, a shared
 * drop-tail bottleneck toward the clients): the algorithms alone, without
 * CPU or event-loop noise, in seconds for minutes of simulated transfer
 * (`node dist/bench/sim.js --devices 50`: the shared-bottleneck case,
 * 50 x 256 KiB at 1 Mbit/s, 20 ms RTT, 5 % loss each way).
 *
 * What the model leaves out, measured against the product
 * (bench/fastlinks.ts): the endpoint's address check (RFC 9175 §2.4: the
 * server pings a new peer before any burst; a lost ping used to hold every
 * block but the first of each request for ACK_TIMEOUT, 2-3 s, a tail the
 * model never had), the probe's retries through fetchBody (here a device
 * whose probe gets no answer fails), and CPU. Compare the same scenario:
 * 10 x 32 KiB (fastlinks --quick) is dominated by its start-up here too.
 */
import { QBlock2Client, type QBlock2ClientOptions } from '../src/blockwise/qblock2-client.js';
import { hasQBlock2, QBlock2Server, type QBlock2ServerOptions } from '../src/blockwise/qblock2-server.js';
import { bufferSource } from '../src/blockwise/source.js';
import { encodeMessage, type CoapMessage } from '../src/codec/message.js';
import { MessageType } from '../src/codec/numbers.js';
import { pathOptions } from '../src/codec/options.js';
import type { RequestSpec } from '../src/core/request.js';
import { mulberry32 } from '../src/core/prng.js';
import type { ResponseSpec } from '../src/messaging/endpoint.js';
import { SimRuntime } from './sim-runtime.js';

/** The path and the load. */
export interface SimOptions {
  readonly devices: number;
  readonly size: number;
  readonly rttMs: number;
  readonly lossUp?: number;
  readonly lossDown?: number;
  /** Downstream bottleneck in bit/s (0: none). */
  readonly rateBps?: number;
  readonly queuePackets?: number;
  readonly seed?: number;
  /** Give up after this much virtual time. Default 1 h. */
  readonly limitMs?: number;
  readonly client?: Partial<QBlock2ClientOptions>;
  readonly server?: Partial<QBlock2ServerOptions>;
}

/** What happened. */
export interface SimResult {
  /** Per device: ms to complete, or undefined when it failed. */
  readonly ms: (number | undefined)[];
  readonly failures: number;
  readonly makespanMs: number;
  readonly goodputBps: number;
  readonly goodputOfBottleneck: number | undefined;
  readonly fairness: number;
  readonly duplicates: number;
  readonly requests: number;
  readonly queueDrops: number;
  readonly lost: { up: number; down: number };
  readonly errors: readonly string[];
}

/** Jain's fairness index: (sum x)^2 / (n sum x^2). */
export function jain(xs: readonly number[]): number {
  const sum = xs.reduce((a, b) => a + b, 0);
  const sq = xs.reduce((a, b) => a + b * b, 0);
  return xs.length === 0 || sq === 0 ? 0 : (sum * sum) / (xs.length * sq);
}

/** IPv4 + UDP headers on the wire, for the bottleneck's serialisation time. */
const IP_UDP = 28;

/** Run one simulation to its end. */
export async function simulate(o: SimOptions): Promise<SimResult> {
  const rt = new SimRuntime(o.seed ?? 1);
  const rnd = mulberry32((o.seed ?? 1) * 7919 + 13);
  const body = new Uint8Array(o.size).map((_, i) => (i * 31 + 7) & 0xff);
  const source = bufferSource(body);
  const half = o.rttMs / 2;
  const lost = { up: 0, down: 0 };
  let queueDrops = 0;
  let queued = 0;
  let linkFreeAt = 0;
  const clients: QBlock2Client[] = [];
  const done: (number | undefined)[] = new Array(o.devices).fill(undefined);
  let settled = 0;
  let requests = 0;
  const errors: string[] = [];
  // Downstream: loss, then the shared bottleneck (if any), then the delay.
  const toClient = (i: number, msg: CoapMessage): void => {
    if (rnd() < (o.lossDown ?? 0)) return void lost.down++;
    const deliver = (): void => void rt.setTimer(half, () => clients[i]!.onResponse(msg));
    const rate = o.rateBps ?? 0;
    if (rate <= 0) return deliver();
    if (queued >= (o.queuePackets ?? 64)) return void queueDrops++;
    const now = rt.now();
    const bytes = encodeMessage(msg).length + IP_UDP;
    linkFreeAt = Math.max(now, linkFreeAt) + (bytes * 8 * 1000) / rate;
    queued++;
    rt.setTimer(linkFreeAt - now, () => {
      queued--;
      deliver();
    });
  };
  let mid = 0;
  const response = (token: Uint8Array, spec: ResponseSpec, type: number): CoapMessage => ({
    type: type as CoapMessage['type'], code: spec.code, messageId: mid++ & 0xffff, token, options: spec.options ?? [], payload: spec.payload ?? new Uint8Array(0),
  });
  const server = new QBlock2Server({
    runtime: rt,
    sender: { send: (peer, token, spec, con) => toClient(peer.port, response(token, spec, con ? MessageType.CON : MessageType.NON)) },
    ...o.server,
  });
  const atServer = (i: number, msg: CoapMessage): void => {
    if (!hasQBlock2(msg)) return;
    const r = server.handle(msg, { address: 'sim', port: i }, source, encodeMessage(msg).length);
    const type = msg.type === MessageType.CON ? MessageType.ACK : MessageType.NON;
    if (r instanceof Promise) void r.then((s) => s && toClient(i, response(msg.token, s, type)));
    else if (r !== undefined) toClient(i, response(msg.token, r, type));
  };
  for (let i = 0; i < o.devices; i++) {
    let tok = 0;
    const answered = new Set<string>();
    const link = {
      send: (spec: RequestSpec): Uint8Array => {
        requests++;
        const token = Uint8Array.of(i >> 8, i & 0xff, (tok >> 16) & 0xff, (tok >> 8) & 0xff, tok++ & 0xff);
        const msg: CoapMessage = { type: spec.confirmable === false ? MessageType.NON : MessageType.CON, code: spec.code, messageId: mid++ & 0xffff, token, options: spec.options ?? [], payload: new Uint8Array(0) };
        const key = token.join('.');
        // A CON is retransmitted as the message layer would (RFC 7252 §4.2) until something answers its token.
        const transmit = (attempt: number): void => {
          if (answered.has(key)) return;
          if (rnd() < (o.lossUp ?? 0)) lost.up++;
          else rt.setTimer(half, () => atServer(i, msg));
          if (msg.type === MessageType.CON && attempt < 4) rt.setTimer(2000 * 2 ** attempt, () => transmit(attempt + 1));
        };
        transmit(0);
        return token;
      },
    };
    const client = new QBlock2Client({
      runtime: rt,
      link,
      options: pathOptions('/f'),
      onBlock: () => {
        // Completion is timed at its last block (the outcome settles on a microtask, between slices).
        if (client.bitmap.complete) done[i] = rt.now();
      },
      maxSize: 1 << 30,
      ...o.client,
    });
    const onResponse = client.onResponse.bind(client);
    client.onResponse = (msg) => {
      answered.add(msg.token.join('.'));
      onResponse(msg);
    };
    clients.push(client);
    client.start().then(
      () => void settled++,
      (e: { code?: string; message?: string }) => {
        errors.push(`${i}@${Math.round(rt.now())}: ${e.message}`);
        settled++;
      },
    );
  }
  const limit = o.limitMs ?? 3_600_000;
  // Outcomes settle on microtasks: let them run between slices of virtual time.
  while (settled < o.devices && rt.now() < limit) {
    rt.run(rt.now() + 1000);
    await new Promise((r) => setImmediate(r));
    if (rt.now() >= limit) break;
  }
  server.close();
  const ok = done.filter((x): x is number => x !== undefined);
  const makespan = Math.max(0, ...ok);
  const goodput = makespan > 0 ? (ok.length * o.size * 8 * 1000) / makespan : 0;
  return {
    ms: done,
    failures: o.devices - ok.length,
    makespanMs: makespan,
    goodputBps: Math.round(goodput),
    goodputOfBottleneck: o.rateBps ? Math.round((goodput / o.rateBps) * 1000) / 1000 : undefined,
    fairness: Math.round(jain(done.map((x) => (x === undefined ? 0 : o.size / x))) * 1000) / 1000,
    duplicates: clients.reduce((n, c) => n + c.stats.duplicates, 0),
    requests,
    queueDrops,
    lost,
    errors,
  };
}

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(process.argv[i + 1]);
}

if (process.argv[1]?.endsWith('sim.js')) {
  const r = await simulate({
    devices: arg('devices', 50),
    size: arg('size', 256 * 1024),
    rttMs: arg('rtt', 20),
    lossUp: arg('loss', 0.05),
    lossDown: arg('loss', 0.05),
    rateBps: arg('rate', 1_000_000),
    queuePackets: arg('queue', 64),
    seed: arg('seed', 1),
    client: process.env.SIM_CC ? { congestion: JSON.parse(process.env.SIM_CC) } : {},
  });
  const { ms, ...rest } = r;
  const times = ms.filter((x): x is number => x !== undefined).sort((a, b) => a - b);
  process.stdout.write(`${JSON.stringify({ ...rest, fastestMs: Math.round(times[0] ?? 0), slowestMs: Math.round(times.at(-1) ?? 0) })}\n`);
}
