/**
 * Q-Block2 serving (RFC 9177 §4.4, §7.2), independent of the endpoint: a
 * request with Q-Block2 is answered with the first block it asks for (as the
 * handler's response: piggybacked on the ACK of a CON, or a NON to a NON),
 * the other blocks follow through a {@link QBlock2Sender}, NON when the
 * request was NON (CON, retransmitted by the message layer, when it was CON).
 *
 * Every request is served from itself and the byte source: a device that
 * reboots mid-burst asks with a new token for what it lacks and gets it.
 * The only state is per burst, for pacing and for the server's own
 * continuation after the body request and a Continue (§7.2: the next
 * MAX_PAYLOADS_SET after NON_TIMEOUT_RANDOM when no Continue came). It is
 * bounded in count (oldest dropped), and in time: an unanswered burst
 * continues at most `maxUnansweredSets` times, each gap twice the last
 * (RFC 8085 §3.1.3 back-off to a silent peer), then it is dropped.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { MAX_SZX } from '../codec/block.js';
import type { CoapMessage } from '../codec/message.js';
import { MessageType } from '../codec/numbers.js';
import { isCoapfwError } from '../errors.js';
import { CongestionTable, type CongestionController, type CongestionOptions } from '../messaging/congestion.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { peerKey, type Peer } from '../core/transport.js';
import { parseQBlock2Request } from './qblock2-options.js';
import { nonTimeoutRandom, resolveQBlockParams, type QBlockParams } from './qblock2-params.js';
import { qblock2Response, selectBlocks, type QBlock2Selection } from './qblock2-select.js';
import type { ByteSource } from './source.js';

/** What the burst logic needs from the message layer: one more response with this token to this peer. */
export interface QBlock2Sender {
  send(peer: Peer, token: Uint8Array, spec: ResponseSpec, confirmable: boolean): void;
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
  /** False for a peer that may get only the first block (RFC 9175 Echo: an unverified address). Default: all may. */
  readonly allowBurst?: (peer: Peer) => boolean;
}

/** Counters. */
export interface QBlock2ServerStats {
  requests: number;
  blocksSent: number;
  continues: number;
  autonomousSets: number;
  rejected: number;
  burstsDropped: number;
}

interface Burst {
  readonly key: string;
  readonly peer: Peer;
  readonly source: ByteSource;
  readonly ctl: CongestionController;
  token: Uint8Array;
  confirmable: boolean;
  szx: number;
  total: number;
  queue: number[];
  /** Blocks already sent in this burst, for the loss signal of a repeat. */
  readonly sent: Set<number>;
  highestSent: number;
  continueFrom: number | undefined;
  unanswered: number;
  sendTimer: TimerHandle | undefined;
  continueTimer: TimerHandle | undefined;
  nextSendAt: number;
  lastRequestAt: number;
  chain: Promise<void>;
  /** Asynchronous reads not yet sent. */
  reading: number;
}

/** Serves Q-Block2 requests for byte sources. */
export class QBlock2Server {
  readonly stats: QBlock2ServerStats = { requests: 0, blocksSent: 0, continues: 0, autonomousSets: 0, rejected: 0, burstsDropped: 0 };
  private readonly params: QBlockParams;
  private readonly bursts = new Map<string, Burst>();
  private readonly congestion: CongestionTable;
  private readonly maxBursts: number;
  private readonly maxUnanswered: number;

  constructor(private readonly o: QBlock2ServerOptions) {
    this.params = resolveQBlockParams(o.params);
    this.congestion = o.congestion ?? new CongestionTable(o.runtime, o.congestionOptions);
    this.maxBursts = o.maxBursts ?? 1024;
    this.maxUnanswered = o.maxUnansweredSets ?? this.params.nonMaxRetransmit;
  }

  /** Bursts currently tracked (bounded by `maxBursts`). */
  get burstCount(): number {
    return this.bursts.size;
  }

  /**
   * Answer `req` for `source`; undefined when it carries no Q-Block2 option
   * (serve it with Block2). Malformed Q-Block2 options get 4.00 or 4.02.
   */
  handle(req: CoapMessage, peer: Peer, source: ByteSource): ResponseSpec | Promise<ResponseSpec> | undefined {
    let sel: QBlock2Selection;
    try {
      const parsed = parseQBlock2Request(req, { maxPayloads: this.params.maxPayloads, maxOptions: this.o.maxOptions });
      if (parsed === undefined) return undefined;
      this.stats.requests++;
      if (parsed.kind === 'continue') this.stats.continues++;
      sel = selectBlocks(parsed, source.size, this.o.maxSzx ?? MAX_SZX, this.params.maxPayloads);
    } catch (e) {
      if (!isCoapfwError(e) || e.responseCode === undefined) throw e;
      this.stats.rejected++;
      // RFC 7252 §5.5.2: a diagnostic payload for the human reading the log.
      return { code: e.responseCode, payload: new TextEncoder().encode(e.message) };
    }
    const [first, ...rest] = sel.blocks;
    this.stats.blocksSent++;
    const response = qblock2Response(source, first!, sel.szx, sel.total);
    if (this.o.allowBurst?.(peer) === false) return response;
    this.schedule(req, peer, source, sel, rest);
    return response;
  }

  /** Stop every burst (server closing). */
  close(): void {
    for (const b of this.bursts.values()) this.drop(b);
  }

  private schedule(req: CoapMessage, peer: Peer, source: ByteSource, sel: QBlock2Selection, rest: number[]): void {
    const key = `${peerKey(peer)}|${bytesToHex(source.etag)}|${sel.szx}`;
    const now = this.o.runtime.now();
    let b = this.bursts.get(key);
    if (b !== undefined && b.source !== source) {
      this.drop(b);
      b = undefined;
    }
    if (b === undefined) b = this.create(key, peer, source, sel);
    else this.onRepeatRequest(b, sel, now);
    this.bursts.delete(key);
    this.bursts.set(key, b); // most recently used last
    b.token = req.token;
    b.confirmable = req.type === MessageType.CON;
    b.lastRequestAt = now;
    b.unanswered = 0;
    b.sent.add(sel.blocks[0]!);
    b.highestSent = Math.max(b.highestSent, sel.blocks[0]!);
    b.continueFrom = sel.continueFrom ?? b.continueFrom;
    // §7.2: missing payloads go before the rest of the set; a new request's blocks replace what was queued.
    const queued = new Set(rest);
    b.queue = [...rest, ...b.queue.filter((n) => !queued.has(n))];
    // The rest goes after the handler's own response (the ACK of a CON carries the first block).
    if (b.sendTimer === undefined) {
      b.sendTimer = this.o.runtime.setTimer(0, () => {
        b.sendTimer = undefined;
        this.pump(b);
      });
    }
    this.armContinue(b);
    while (this.bursts.size > this.maxBursts) {
      this.stats.burstsDropped++;
      this.drop(this.bursts.values().next().value!);
    }
  }

  private create(key: string, peer: Peer, source: ByteSource, sel: QBlock2Selection): Burst {
    const ctl = this.congestion.get(peerKey(peer));
    return {
      key, peer, source, ctl, token: new Uint8Array(0), confirmable: false, szx: sel.szx, total: sel.total,
      queue: [], sent: new Set(), highestSent: -1, continueFrom: sel.continueFrom, unanswered: 0,
      sendTimer: undefined, continueTimer: undefined, nextSendAt: 0, lastRequestAt: 0, chain: Promise.resolve(), reading: 0,
    };
  }

  /**
   * A later request for the same body from the same peer is the only
   * feedback a server gets: blocks it asks for again were lost (one
   * congestion signal), the time since the burst began bounds the RTT from
   * above, and blocks it does not ask for again count as delivered.
   */
  private onRepeatRequest(b: Burst, sel: QBlock2Selection, now: number): void {
    const repeats = sel.blocks.filter((n) => b.sent.has(n)).length;
    if (b.queue.length === 0 && b.ctl.srtt === undefined) b.ctl.rttSample(now - b.lastRequestAt);
    b.ctl.onAcked(Math.max(0, b.sent.size - repeats));
    if (repeats > 0) b.ctl.onCongestionSignal();
    b.sent.clear();
  }

  /**
   * Send queued blocks: one window per RTT, paced within it. Before an RTT
   * estimate, one window per request or continuation (RFC 8085 §3.1.3).
   */
  private pump(b: Burst): void {
    if (b.sendTimer !== undefined) return;
    const rt = this.o.runtime;
    let budget = Math.max(1, b.ctl.window);
    while (b.queue.length > 0) {
      if (budget === 0) {
        const srtt = b.ctl.srtt;
        if (srtt !== undefined) b.sendTimer = rt.setTimer(Math.max(1, srtt), () => {
          b.sendTimer = undefined;
          this.pump(b);
        });
        return;
      }
      const now = rt.now();
      if (b.nextSendAt > now) {
        b.sendTimer = rt.setTimer(b.nextSendAt - now, () => {
          b.sendTimer = undefined;
          this.pump(b);
        });
        return;
      }
      const num = b.queue.shift()!;
      budget--;
      this.sendBlock(b, num);
      b.nextSendAt = Math.max(now, b.nextSendAt) + b.ctl.pacingIntervalMs();
    }
  }

  private sendBlock(b: Burst, num: number): void {
    b.sent.add(num);
    b.highestSent = Math.max(b.highestSent, num);
    this.stats.blocksSent++;
    const token = b.token;
    const confirmable = b.confirmable;
    const spec = qblock2Response(b.source, num, b.szx, b.total);
    if (!(spec instanceof Promise) && b.reading === 0) {
      this.o.sender.send(b.peer, token, spec, confirmable);
      return;
    }
    // Reads may be asynchronous: chain them so that blocks leave in order.
    b.reading++;
    b.chain = b.chain
      .then(async () => this.o.sender.send(b.peer, token, await spec, confirmable))
      // A failed read (file replaced) ends this burst; the client asks again and gets the new ETag.
      .catch(() => this.drop(b))
      .finally(() => void b.reading--);
  }

  /** §7.2: with no Continue within NON_TIMEOUT_RANDOM, send the next MAX_PAYLOADS_SET anyway. */
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
    if (b.unanswered >= this.maxUnanswered) {
      this.drop(b);
      return;
    }
    if (b.queue.length > 0) {
      // A window is still queued (no RTT estimate yet): it goes now, as the next set would.
      b.unanswered++;
      this.pump(b);
      this.armContinue(b);
      return;
    }
    if (b.continueFrom === undefined) {
      this.drop(b);
      return;
    }
    // The set after the highest block sent, so a client that asked ahead is not sent it twice.
    const start = Math.max(b.continueFrom, (Math.floor(b.highestSent / mp) + 1) * mp);
    if (start >= b.total) {
      this.drop(b);
      return;
    }
    this.stats.autonomousSets++;
    b.unanswered++;
    b.continueFrom = start + mp;
    for (let n = start; n < Math.min(b.total, start + mp); n++) b.queue.push(n);
    this.pump(b);
    this.armContinue(b);
  }

  private drop(b: Burst): void {
    const rt = this.o.runtime;
    if (b.sendTimer !== undefined) rt.clearTimer(b.sendTimer);
    if (b.continueTimer !== undefined) rt.clearTimer(b.continueTimer);
    b.sendTimer = b.continueTimer = undefined;
    b.queue = [];
    if (this.bursts.get(b.key) === b) this.bursts.delete(b.key);
  }
}
