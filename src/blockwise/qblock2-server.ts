/**
 * Q-Block2 serving (RFC 9177 §4.4, §7.2), independent of the endpoint: a
 * request with Q-Block2 is answered with the first block it asks for (as the
 * handler's response: piggybacked on the ACK of a CON, or a NON to a NON);
 * the other blocks follow through a {@link QBlock2Sender}, NON when the
 * request was NON (CON, retransmitted by the message layer, when it was
 * CON), each with the token of the request that asked for it (Figure 10).
 *
 * - Blocks a request names (missing blocks, §4.4) go at once, at most one
 *   MAX_PAYLOADS_SET per request; more wait for the next request of that
 *   peer for that body, or for NON_TIMEOUT_RANDOM (§7.2).
 * - The entire body (NUM 0, M set) and a 'Continue' start the server's own
 *   sets: one MAX_PAYLOADS_SET, paced by the peer's congestion controller,
 *   then the next one after NON_TIMEOUT_RANDOM unless a Continue came first,
 *   at most `maxUnansweredSets` times without word from the client, each gap
 *   twice the last (RFC 8085 §3.1.3); then the burst is forgotten.
 * - Nothing beyond the first response goes to a peer the `gate` does not
 *   open for (RFC 9175 §2.4: an address not shown to be the client's).
 *
 * Every request is served from itself and the byte source: a device that
 * reboots mid-burst asks with a new token for what it lacks and gets it.
 * The only state is per burst, for pacing and the server's own sets,
 * bounded in count (oldest dropped) and in time.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { MAX_SZX } from '../codec/block.js';
import type { CoapMessage } from '../codec/message.js';
import { MessageType, OptionNumber } from '../codec/numbers.js';
import { isCoapfwError } from '../errors.js';
import type { CongestionController, CongestionOptions } from '../messaging/congestion.js';
import { CongestionTable } from '../messaging/congestion-table.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { peerKey, type Peer } from '../core/transport.js';
import { parseQBlock2Request } from './qblock2-options.js';
import { nonTimeoutRandom, resolveQBlockParams, type QBlockParams } from './qblock2-params.js';
import { qblock2Response, selectBlocks, type QBlock2Selection } from './qblock2-select.js';
import type { ByteSource } from './source.js';

/** Whether `req` asks for Q-Block2 (RFC 9177 §4.4): then {@link QBlock2Server.handle} answers it. */
export function hasQBlock2(req: CoapMessage): boolean {
  return req.options.some((o) => o.number === OptionNumber.Q_BLOCK2);
}

/** What the burst logic needs from the message layer: one more response with this token to this peer. */
export interface QBlock2Sender {
  send(peer: Peer, token: Uint8Array, spec: ResponseSpec, confirmable: boolean, requestBytes: number): void;
}

/** Options of {@link QBlock2Server}. */
export interface QBlock2ServerOptions {
  readonly runtime: Runtime;
  readonly sender: QBlock2Sender;
  readonly params?: Partial<QBlockParams>;
  /** Largest block size exponent served. Default 6 (1024 bytes). */
  readonly maxSzx?: number;
  /** Bursts tracked at once; the oldest is dropped beyond. Default 1024. */
  readonly maxBursts?: number;
  /** Sets the server sends on its own without hearing from the client. Default NON_MAX_RETRANSMIT (4). */
  readonly maxUnansweredSets?: number;
  /** Q-Block2 options read from one request. Default 256. */
  readonly maxOptions?: number;
  /** Per-peer congestion control (shared with other users, or made here). */
  readonly congestion?: CongestionTable;
  readonly congestionOptions?: CongestionOptions;
  /**
   * Whether anything beyond the first response may go to `peer` (RFC 9175
   * §2.4): true, false, or a check still running (a ping, say). Default: always.
   */
  readonly gate?: (peer: Peer, requestBytes: number) => boolean | Promise<boolean>;
  /** Run `fn` after the current response has been sent. Default: a 0 ms timer of the runtime. */
  readonly defer?: (fn: () => void) => void;
}

/** Counters. */
export interface QBlock2ServerStats {
  requests: number;
  blocksSent: number;
  continues: number;
  autonomousSets: number;
  rejected: number;
  burstsDropped: number;
  /** Requests whose blocks beyond the first were withheld: the gate was closed. */
  gated: number;
}

/** A block waiting to go, with the request it answers. */
interface Queued {
  readonly num: number;
  readonly token: Uint8Array;
  readonly confirmable: boolean;
  readonly requestBytes: number;
}

interface Burst {
  readonly key: string;
  readonly peer: Peer;
  readonly source: ByteSource;
  readonly ctl: CongestionController;
  readonly szx: number;
  readonly total: number;
  /** Blocks the client named: at once, first in first out. */
  asked: Queued[];
  /** Named blocks past the first MAX_PAYLOADS_SET of their request. */
  deferred: Queued[];
  /** The server's own set: paced. */
  own: Queued[];
  /** Blocks sent since the last request, for the loss signal of a repeat. */
  readonly sent: Set<number>;
  highestSent: number;
  continueFrom: number | undefined;
  /** The body or Continue request the server's own sets answer (Figure 10: they carry its token). */
  ownFor: Omit<Queued, 'num'> | undefined;
  /** A pump is waiting for the first response to go. */
  scheduled: boolean;
  unanswered: number;
  open: boolean;
  pending: boolean;
  sendTimer: TimerHandle | undefined;
  continueTimer: TimerHandle | undefined;
  nextSendAt: number;
  lastSetSentAt: number | undefined;
  chain: Promise<void>;
  reading: number;
}

/** Serves Q-Block2 requests for byte sources. */
export class QBlock2Server {
  readonly stats: QBlock2ServerStats = { requests: 0, blocksSent: 0, continues: 0, autonomousSets: 0, rejected: 0, burstsDropped: 0, gated: 0 };
  private readonly params: QBlockParams;
  private readonly bursts = new Map<string, Burst>();
  private readonly congestion: CongestionTable;
  private readonly maxBursts: number;
  private readonly maxUnanswered: number;
  private readonly defer: (fn: () => void) => void;

  constructor(private readonly o: QBlock2ServerOptions) {
    this.params = resolveQBlockParams(o.params);
    this.congestion = o.congestion ?? new CongestionTable(o.runtime, o.congestionOptions);
    this.maxBursts = o.maxBursts ?? 1024;
    this.maxUnanswered = o.maxUnansweredSets ?? this.params.nonMaxRetransmit;
    this.defer = o.defer ?? ((fn) => void o.runtime.setTimer(0, fn));
  }

  /** Bursts currently tracked (bounded by `maxBursts`). */
  get burstCount(): number {
    return this.bursts.size;
  }

  /**
   * Answer `req`, a request with Q-Block2 (check with {@link hasQBlock2};
   * serve others with Block2), for `source`. Malformed Q-Block2 options get
   * 4.00 or 4.02. Undefined (or a promise of it) when every block went
   * through the sender and the endpoint has nothing to send. `requestBytes`
   * is the request's size, for the gate's amplification budget.
   */
  handle(req: CoapMessage, peer: Peer, source: ByteSource, requestBytes = 0): ResponseSpec | Promise<ResponseSpec | undefined> | undefined {
    let sel: QBlock2Selection;
    let kind: 'body' | 'continue' | 'blocks';
    try {
      const parsed = parseQBlock2Request(req, { maxPayloads: this.params.maxPayloads, maxOptions: this.o.maxOptions });
      if (parsed === undefined) return undefined;
      this.stats.requests++;
      kind = parsed.kind;
      if (kind === 'continue') this.stats.continues++;
      sel = selectBlocks(parsed, source.size, this.o.maxSzx ?? MAX_SZX, this.params.maxPayloads);
    } catch (e) {
      if (!isCoapfwError(e) || e.responseCode === undefined) throw e;
      this.stats.rejected++;
      // RFC 7252 §5.5.2: a diagnostic payload for the human reading the log.
      return { code: e.responseCode, payload: new TextEncoder().encode(e.message) };
    }
    const [first, ...rest] = sel.blocks;
    const direct = this.sendDirect(req, peer, source, sel, kind, requestBytes);
    if (direct !== false) return direct;
    this.stats.blocksSent++;
    const response = qblock2Response(source, first!, sel.szx, sel.total);
    const b = this.burstFor(peer, source, sel);
    this.onRequest(b, kind, sel, first!);
    const q = (num: number): Queued => ({ num, token: req.token, confirmable: req.type === MessageType.CON, requestBytes });
    if (kind === 'blocks') {
      // §7.2: at most one MAX_PAYLOADS_SET of missing blocks at a time, the first block included.
      const now = rest.slice(0, this.params.maxPayloads - 1);
      b.asked.push(...now.map(q));
      b.deferred.push(...rest.slice(now.length).map(q));
    } else {
      b.own = rest.map(q);
      b.continueFrom = sel.continueFrom;
      b.ownFor = q(first!);
    }
    this.admit(b, peer, requestBytes);
    this.settle(b);
    return response;
  }

  /**
   * A NON request naming at most one set of blocks, from a peer the gate
   * already lets through: every block is sent here, in order, and the
   * endpoint sends nothing (undefined; a promise of undefined while reads
   * complete, rejected with the read's error, which the router answers).
   * Sending the first one as the handler's response and the rest later
   * would let the next request's first block overtake them, which the
   * client's loss detection takes for loss. False: not this case.
   */
  private sendDirect(req: CoapMessage, peer: Peer, source: ByteSource, sel: QBlock2Selection, kind: string, requestBytes: number): false | undefined | Promise<undefined> {
    if (kind !== 'blocks' || req.type !== MessageType.NON || sel.blocks.length > this.params.maxPayloads) return false;
    if (this.o.gate !== undefined && this.o.gate(peer, requestBytes) !== true) return false;
    const specs = sel.blocks.map((n) => qblock2Response(source, n, sel.szx, sel.total));
    this.stats.blocksSent += specs.length;
    const send = (spec: ResponseSpec): void => this.o.sender.send(peer, req.token, spec, false, requestBytes);
    if (!specs.some((x) => x instanceof Promise)) {
      for (const spec of specs as ResponseSpec[]) send(spec);
      return undefined;
    }
    return (async () => {
      for (const spec of specs) send(await spec);
      return undefined;
    })();
  }

  /** Stop every burst (server closing). */
  close(): void {
    for (const b of [...this.bursts.values()]) this.drop(b);
  }

  private burstFor(peer: Peer, source: ByteSource, sel: QBlock2Selection): Burst {
    const key = `${peerKey(peer)}|${bytesToHex(source.etag)}|${sel.szx}`;
    let b = this.bursts.get(key);
    if (b !== undefined && b.source !== source) {
      this.drop(b);
      b = undefined;
    }
    b ??= {
      key, peer, source, ctl: this.congestion.get(peerKey(peer)), szx: sel.szx, total: sel.total,
      asked: [], deferred: [], own: [], sent: new Set(), highestSent: -1, continueFrom: undefined, ownFor: undefined, scheduled: false, unanswered: 0,
      open: false, pending: false, sendTimer: undefined, continueTimer: undefined, nextSendAt: 0, lastSetSentAt: undefined,
      chain: Promise.resolve(), reading: 0,
    };
    this.bursts.delete(key);
    this.bursts.set(key, b); // most recently used last
    while (this.bursts.size > this.maxBursts) {
      this.stats.burstsDropped++;
      this.drop(this.bursts.values().next().value!);
    }
    return b;
  }

  /**
   * A request is the server's only feedback: blocks it asks for again were
   * lost (one congestion signal), a Continue times the round trip of a set,
   * and blocks sent and not asked for again count as delivered. A new
   * request also releases one set of deferred missing blocks (§7.2).
   */
  private onRequest(b: Burst, kind: 'body' | 'continue' | 'blocks', sel: QBlock2Selection, first: number): void {
    const now = this.o.runtime.now();
    const repeats = sel.blocks.filter((n) => b.sent.has(n)).length;
    if (kind === 'continue' && b.lastSetSentAt !== undefined) b.ctl.rttSample(now - b.lastSetSentAt);
    b.ctl.onAcked(Math.max(0, b.sent.size - repeats));
    if (repeats > 0) b.ctl.onCongestionSignal();
    b.sent.clear();
    b.unanswered = 0;
    b.sent.add(first);
    b.highestSent = Math.max(b.highestSent, first);
    if (b.deferred.length > 0) b.asked.push(...b.deferred.splice(0, this.params.maxPayloads));
  }

  /** Ask the gate once per burst; while it has not answered, nothing is sent. */
  private admit(b: Burst, peer: Peer, requestBytes: number): void {
    if (b.open || b.pending) return;
    const verdict = this.o.gate?.(peer, requestBytes) ?? true;
    if (verdict === true) {
      b.open = true;
      return;
    }
    this.stats.gated++;
    if (verdict === false) {
      b.asked = [];
      b.deferred = [];
      b.own = [];
      return;
    }
    b.pending = true;
    verdict.then(
      (ok) => this.opened(b, ok),
      () => this.opened(b, false),
    );
  }

  private opened(b: Burst, ok: boolean): void {
    b.pending = false;
    if (this.bursts.get(b.key) !== b) return;
    if (!ok) return this.drop(b);
    b.open = true;
    this.settle(b);
  }

  /** After a request: send what may go, arm the server's own continuation, or forget the burst. */
  private settle(b: Burst): void {
    if (b.pending) return;
    if (b.open && (b.asked.length > 0 || b.own.length > 0) && !b.scheduled && b.sendTimer === undefined) {
      // The rest goes after the handler's own response (the ACK of a CON carries the first block).
      b.scheduled = true;
      this.defer(() => {
        b.scheduled = false;
        this.pump(b);
      });
    }
    if (b.continueFrom !== undefined || b.deferred.length > 0) this.armContinue(b);
    else this.dropIfIdle(b);
  }

  /** Named blocks at once; the server's own set one window per RTT, paced (RFC 9002 §7.7). */
  private pump(b: Burst): void {
    if (this.bursts.get(b.key) !== b || !b.open) return;
    for (const q of b.asked.splice(0)) this.sendBlock(b, q);
    const rt = this.o.runtime;
    let budget = Math.max(1, b.ctl.window);
    while (b.own.length > 0) {
      const now = rt.now();
      if (budget === 0 || b.nextSendAt > now) {
        const wait = budget === 0 ? Math.max(1, b.ctl.srtt ?? 1) : b.nextSendAt - now;
        b.sendTimer = rt.setTimer(wait, () => {
          b.sendTimer = undefined;
          this.pump(b);
        });
        return;
      }
      budget--;
      this.sendBlock(b, b.own.shift()!);
      b.nextSendAt = Math.max(now, b.nextSendAt) + b.ctl.pacingIntervalMs();
      if (b.own.length === 0) b.lastSetSentAt = now;
    }
    this.dropIfIdle(b);
  }

  private sendBlock(b: Burst, q: Queued): void {
    b.sent.add(q.num);
    b.highestSent = Math.max(b.highestSent, q.num);
    this.stats.blocksSent++;
    const spec = qblock2Response(b.source, q.num, b.szx, b.total);
    if (!(spec instanceof Promise) && b.reading === 0) {
      this.o.sender.send(b.peer, q.token, spec, q.confirmable, q.requestBytes);
      return;
    }
    // Reads may be asynchronous: chain them so that blocks leave in order.
    b.reading++;
    b.chain = b.chain
      .then(async () => this.o.sender.send(b.peer, q.token, await spec, q.confirmable, q.requestBytes))
      // A failed read (file replaced) ends this burst; the client asks again and gets the new ETag.
      .catch(() => this.drop(b))
      .finally(() => {
        b.reading--;
        if (b.own.length === 0) this.dropIfIdle(b);
      });
  }

  /** §7.2: with no word from the client within NON_TIMEOUT_RANDOM, send the next set anyway. */
  private armContinue(b: Burst): void {
    const rt = this.o.runtime;
    if (b.continueTimer !== undefined) rt.clearTimer(b.continueTimer);
    const delay = nonTimeoutRandom(this.params, () => rt.random()) * 2 ** b.unanswered;
    b.continueTimer = rt.setTimer(delay, () => {
      b.continueTimer = undefined;
      this.continueOnOwn(b);
    });
  }

  private continueOnOwn(b: Burst): void {
    const mp = this.params.maxPayloads;
    if (b.unanswered >= this.maxUnanswered || !b.open) return this.drop(b);
    b.unanswered++;
    if (b.deferred.length > 0) {
      b.asked.push(...b.deferred.splice(0, mp));
    } else if (b.continueFrom !== undefined) {
      // The set after the highest block sent, so a client that asked ahead is not sent it twice.
      const start = Math.max(b.continueFrom, (Math.floor(b.highestSent / mp) + 1) * mp);
      if (start >= b.total) return this.drop(b);
      this.stats.autonomousSets++;
      b.continueFrom = start + mp;
      const from = b.ownFor!;
      for (let n = start; n < Math.min(b.total, start + mp); n++) b.own.push({ ...from, num: n });
    } else {
      return this.drop(b);
    }
    this.pump(b);
    this.armContinue(b);
  }

  /** A burst with nothing to send and no continuation holds no state. */
  private dropIfIdle(b: Burst): void {
    if (b.asked.length + b.own.length + b.deferred.length === 0 && b.continueFrom === undefined && !b.pending && !b.scheduled && b.reading === 0) this.drop(b);
  }

  private drop(b: Burst): void {
    const rt = this.o.runtime;
    if (b.sendTimer !== undefined) rt.clearTimer(b.sendTimer);
    if (b.continueTimer !== undefined) rt.clearTimer(b.continueTimer);
    b.sendTimer = b.continueTimer = undefined;
    b.asked = [];
    b.own = [];
    b.deferred = [];
    b.continueFrom = undefined;
    if (this.bursts.get(b.key) === b) this.bursts.delete(b.key);
  }
}
