/**
 * Q-Block2 client (RFC 9177 §4.4, §7.2): receives a body as a burst of NON
 * responses into an exact bitmap, asks for what is missing, and reports when
 * the server does not do Q-Block2 (4.02, or a response without Q-Block2) so
 * the caller falls back to Block2.
 *
 * Two pacing modes, both sending only messages of RFC 9177's forms:
 * - 'rfc': exactly §7.2: a 'Continue' when a whole MAX_PAYLOADS_SET arrived;
 *   NON_RECEIVE_TIMEOUT after the last payload, one request listing the
 *   missing blocks (a run reaching the end of its set as one option with M
 *   set), the wait doubling per repeat, given up after NON_MAX_RETRANSMIT.
 * - 'paced' (default): a congestion controller (messaging/congestion.ts) keeps
 *   a window of blocks asked for and not yet arrived; they are asked for by
 *   missing-block requests (a block not yet received is missing), lost ones
 *   found from later arrivals and asked for again within about one RTT.
 *
 * The first request is Confirmable (§4.1: the only reliable way to learn that
 * a server supports Q-Block2); the message layer retransmits it.
 */
import { equalBytes } from '@noble/curves/utils.js';
import { blockSize, MAX_SZX } from '../codec/block.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { CoapfwError } from '../errors.js';
import { CongestionController } from '../messaging/congestion.js';
import type { RequestSpec } from '../core/request.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { BlockBitmap, blockCount } from './bitmap.js';
import { checkPayload, classifyFirst, responseCodeError, type BodyShape, type QBlock2Payload } from './qblock2-check.js';
import { bodyRequest, continueRequest, missingRequests, type MissingRequestLimits, type QBlockItem } from './qblock2-options.js';
import { nonPartialTimeout, nonReceiveWait, resolveQBlockParams, type QBlockParams } from './qblock2-params.js';

/** What the client needs from the message layer: send a request whose every response comes back to {@link QBlock2Client.onResponse}. */
export interface QBlock2Link {
  send(spec: RequestSpec): void;
}

/** How a Q-Block2 fetch ended. */
export type QBlock2Outcome =
  | { readonly kind: 'complete'; readonly size: number; readonly etag: Uint8Array | undefined; readonly szx: number; readonly stats: QBlock2ClientStats }
  /** The server does not do Q-Block2 here: fetch with Block2. `response` is what it answered. */
  | { readonly kind: 'fallback'; readonly reason: 'bad-option' | 'no-qblock2'; readonly response: CoapMessage };

/** Counters. */
export interface QBlock2ClientStats {
  requests: number;
  blocks: number;
  duplicates: number;
  rerequested: number;
  continues: number;
}

/** Options of {@link QBlock2Client}. */
export interface QBlock2ClientOptions {
  readonly runtime: Runtime;
  readonly link: QBlock2Link;
  /** Options naming the resource (Uri-Path, Uri-Query, ...). */
  readonly options: readonly CoapOption[];
  /** Block size exponent asked for (the server may pick smaller). Default 6. */
  readonly szx?: number;
  /** Blocks below this (in units of `szx`) are already held (resume); they are not asked for. Default 0. */
  readonly startBlock?: number;
  /** ETag the body must have (resume); another one fails with ETAG_MISMATCH. */
  readonly etag?: Uint8Array;
  /** Refuse a larger body (TOO_LARGE). Default 16 MiB. */
  readonly maxSize?: number;
  readonly params?: Partial<QBlockParams>;
  readonly mode?: 'rfc' | 'paced';
  /** Per-peer controller for 'paced' (share one per peer across transfers). */
  readonly controller?: CongestionController;
  readonly limits?: MissingRequestLimits;
  /** Send the first request as CON (default; §4.1 REQUIRES it to learn whether the server supports Q-Block2). */
  readonly confirmableFirst?: boolean;
  /** Each new block, in arrival order; a returned promise is awaited before completion. */
  readonly onBlock: (block: QBlock2Payload) => void | Promise<void>;
}

type State = 'idle' | 'probing' | 'receiving' | 'done';

/** Receives one body with Q-Block2. */
export class QBlock2Client {
  readonly stats: QBlock2ClientStats = { requests: 0, blocks: 0, duplicates: 0, rerequested: 0, continues: 0 };
  private state: State = 'idle';
  private readonly params: QBlockParams;
  private readonly ctl: CongestionController;
  private readonly maxSize: number;
  private shape: BodyShape | undefined;
  private bitmap: BlockBitmap | undefined;
  private asked: BlockBitmap | undefined;
  private timer: TimerHandle | undefined;
  private sink: Promise<void> = Promise.resolve();
  private settle!: { resolve: (o: QBlock2Outcome) => void; reject: (e: Error) => void };
  readonly done: Promise<QBlock2Outcome>;
  // 'paced'
  private retry: number[] = [];
  private nextNew = 0;
  private nextRequestAt = 0;
  // 'rfc'
  private readonly continued = new Set<number>();
  private highestSet = 0;
  private rerequests = 0;

  constructor(private readonly o: QBlock2ClientOptions) {
    this.params = resolveQBlockParams(o.params);
    this.ctl = o.controller ?? new CongestionController(o.runtime, { initialWindow: this.params.maxPayloads });
    this.maxSize = o.maxSize ?? 16 * 1024 * 1024;
    blockSize(o.szx ?? MAX_SZX); // validates
    const start = o.startBlock ?? 0;
    if (!Number.isInteger(start) || start < 0) throw new CoapfwError('INVALID_ARGUMENT', `q-block2: startBlock must be an integer >= 0, got ${start}`);
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // A failure nobody awaits yet must not become an unhandled rejection before the caller looks.
    this.done.catch(() => undefined);
  }

  /** Send the first request (CON GET with Q-Block2 0/1, or from `startBlock` when resuming). */
  start(): Promise<QBlock2Outcome> {
    if (this.state !== 'idle') return this.done;
    this.state = 'probing';
    const szx = this.o.szx ?? MAX_SZX;
    const start = this.o.startBlock ?? 0;
    const spec = bodyRequest(this.o.options, szx, this.o.confirmableFirst ?? true, start);
    // The server answers with the rest of the first MAX_PAYLOADS_SET: count it as asked for.
    const mp = this.params.maxPayloads;
    for (let n = start; n < (Math.floor(start / mp) + 1) * mp; n++) this.ctl.onSent(n);
    this.send(spec);
    this.armTimer(nonPartialTimeout(this.params));
    return this.done;
  }

  /** A response carrying one of our tokens. */
  onResponse(msg: CoapMessage): void {
    if (this.state === 'done' || this.state === 'idle') return;
    try {
      if (this.state === 'probing') {
        const kind = classifyFirst(msg);
        if (kind === 'bad-option' || kind === 'no-qblock2') return this.finish({ kind: 'fallback', reason: kind, response: msg });
        if (kind === 'error') throw responseCodeError(msg);
      }
      this.accept(checkPayload(msg, this.shape, this.maxSize));
    } catch (e) {
      this.fail(e as Error);
    }
  }

  /** The message layer gave up on a request (TIMEOUT, RESET). */
  onError(error: Error): void {
    if (this.state === 'done') return;
    this.fail(error);
  }

  /** Stop: the outcome rejects with ABORTED. */
  abort(reason?: unknown): void {
    this.fail(new CoapfwError('ABORTED', 'q-block2: aborted', { cause: reason }));
  }

  private accept(p: QBlock2Payload): void {
    if (this.shape === undefined) this.begin(p);
    const bitmap = this.bitmap!;
    this.ctl.onDelivered(p.num);
    if (!bitmap.set(p.num)) {
      // §4.4: a duplicate block with the same ETag is silently ignored.
      this.stats.duplicates++;
      return;
    }
    this.stats.blocks++;
    const sink = this.o.onBlock(p);
    if (sink instanceof Promise) this.sink = this.sink.then(() => sink);
    if (bitmap.complete) {
      const shape = this.shape!;
      this.sink.then(
        () => this.finish({ kind: 'complete', size: shape.size, etag: shape.etag, szx: shape.szx, stats: this.stats }),
        (e: unknown) => this.fail(e as Error),
      );
      this.state = 'done';
      this.clearTimer();
      return;
    }
    if (this.o.mode === 'rfc') this.afterArrivalRfc(p.num);
    else this.fill();
  }

  /** The first payload fixes block size, Size2 and ETag (§4.6). */
  private begin(p: QBlock2Payload): void {
    const asked = this.o.szx ?? MAX_SZX;
    if (p.szx > asked) throw new CoapfwError('BLOCK_MISMATCH', `q-block2: server raised the block size to ${blockSize(p.szx)} (asked ${blockSize(asked)})`);
    if (this.o.etag !== undefined && (p.etag === undefined || !equalBytes(p.etag, this.o.etag))) {
      throw new CoapfwError('ETAG_MISMATCH', 'q-block2: the body changed since the transfer began (ETag differs)');
    }
    const total = blockCount(p.size, blockSize(p.szx));
    this.shape = { szx: p.szx, size: p.size, total, etag: p.etag };
    this.bitmap = new BlockBitmap(total);
    this.asked = new BlockBitmap(total);
    const held = Math.min(total, (this.o.startBlock ?? 0) << (asked - p.szx));
    for (let n = 0; n < held; n++) this.bitmap.set(n);
    const mp = this.params.maxPayloads;
    const firstSetEnd = Math.min(total, (Math.floor(held / mp) + 1) * mp);
    for (let n = held; n < firstSetEnd; n++) this.asked.set(n);
    for (let n = firstSetEnd; n < firstSetEnd + mp; n++) this.ctl.forget(n);
    this.nextNew = firstSetEnd;
    this.highestSet = Math.floor(held / mp);
    this.state = 'receiving';
  }

  // --- 'paced' -----------------------------------------------------------

  /** Ask for as many blocks as the window allows: lost ones first, then new ones, in batches. */
  private fill(): void {
    const bitmap = this.bitmap!;
    const shape = this.shape!;
    const now = this.o.runtime.now();
    const allowance = this.ctl.allowance();
    const pending = this.retry.length + (shape.total - this.nextNew);
    const batch = Math.min(this.o.limits?.maxPerRequest ?? 64, Math.max(1, Math.ceil(this.ctl.window / 4)), pending);
    if (allowance > 0 && pending > 0 && (allowance >= batch || this.ctl.inFlight === 0)) {
      if (now < this.nextRequestAt) return this.armPacedTimer(this.nextRequestAt - now);
      const pick: number[] = [];
      while (pick.length < allowance && this.retry.length > 0) {
        const n = this.retry.shift()!;
        if (!bitmap.has(n) && !this.ctl.isInFlight(n)) pick.push(n);
      }
      for (; pick.length < allowance && this.nextNew < shape.total; this.nextNew++) {
        if (!bitmap.has(this.nextNew) && !this.ctl.isInFlight(this.nextNew)) pick.push(this.nextNew);
      }
      pick.sort((a, b) => a - b);
      for (const n of pick) {
        const again = this.asked!.has(n);
        if (again) this.stats.rerequested++;
        this.asked!.set(n);
        this.ctl.onSent(n, again);
      }
      for (const spec of missingRequests(this.o.options, pick, shape.szx, this.o.limits)) this.send(spec);
      this.nextRequestAt = now + pick.length * this.ctl.pacingIntervalMs();
    }
    this.armPacedTimer();
  }

  private armPacedTimer(after?: number): void {
    const at = this.ctl.nextTimerAt();
    const now = this.o.runtime.now();
    const wait = Math.min(after ?? Infinity, at === undefined ? Infinity : Math.max(0.5, at - now));
    this.armTimer(wait === Infinity ? nonPartialTimeout(this.params) : wait);
  }

  private onPacedTimer(): void {
    if (this.ctl.idleMs() >= nonPartialTimeout(this.params)) {
      throw new CoapfwError('TIMEOUT', `q-block2: nothing arrived for ${Math.round(this.ctl.idleMs())} ms (NON_PARTIAL_TIMEOUT)`);
    }
    const lost = [...this.ctl.detectLost(), ...this.ctl.onProbeTimeout()];
    if (lost.length > 0) this.retry = [...new Set([...this.retry, ...lost])].sort((a, b) => a - b);
    this.fill();
  }

  // --- 'rfc' -------------------------------------------------------------

  private afterArrivalRfc(num: number): void {
    const mp = this.params.maxPayloads;
    const set = Math.floor(num / mp);
    this.highestSet = Math.max(this.highestSet, set);
    this.rerequests = 0;
    this.maybeContinue(set);
    // §4.4: wait NON_RECEIVE_TIMEOUT after the last received payload before asking for missing ones.
    this.armTimer(nonReceiveWait(this.params, 1));
  }

  /** §7.2: on receipt of all of a MAX_PAYLOADS_SET, a 'Continue' for the next, once. */
  private maybeContinue(set: number): void {
    const mp = this.params.maxPayloads;
    const { total, szx } = this.shape!;
    const next = (set + 1) * mp;
    if (next >= total || this.continued.has(next)) return;
    const bitmap = this.bitmap!;
    if (bitmap.missingIn(set * mp, next) > 0 || bitmap.missingIn(next, Math.min(total, next + mp)) < Math.min(mp, total - next)) return;
    this.continued.add(next);
    this.stats.continues++;
    this.send(continueRequest(this.o.options, next, szx, mp));
  }

  private onReceiveTimeout(): void {
    const mp = this.params.maxPayloads;
    const { total, szx } = this.shape!;
    this.rerequests++;
    if (this.rerequests > this.params.nonMaxRetransmit) {
      // §7.2: past NON_MAX_RETRANSMIT the client discards the partial body.
      throw new CoapfwError('TIMEOUT', `q-block2: blocks still missing after ${this.params.nonMaxRetransmit} requests (NON_MAX_RETRANSMIT)`);
    }
    const end = Math.min(total, (this.highestSet + 1) * mp);
    const items = compressRuns(this.bitmap!, end, mp);
    if (items.length > 0) {
      this.stats.rerequested += this.bitmap!.missingIn(0, end);
      for (const spec of missingRequests(this.o.options, items, szx, this.o.limits)) this.send(spec);
    } else {
      // Every set seen is whole: the Continue (or the next set) was lost; continue again.
      this.stats.continues++;
      this.send(continueRequest(this.o.options, end, szx, mp));
    }
    this.armTimer(nonReceiveWait(this.params, this.rerequests + 1));
  }

  // --- common ------------------------------------------------------------

  private send(spec: RequestSpec): void {
    this.stats.requests++;
    this.o.link.send(spec);
  }

  private armTimer(ms: number): void {
    this.clearTimer();
    this.timer = this.o.runtime.setTimer(ms, () => {
      this.timer = undefined;
      try {
        if (this.state === 'probing') throw new CoapfwError('TIMEOUT', 'q-block2: no answer to the first request');
        if (this.state !== 'receiving') return;
        if (this.o.mode === 'rfc') this.onReceiveTimeout();
        else this.onPacedTimer();
      } catch (e) {
        this.fail(e as Error);
      }
    });
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.o.runtime.clearTimer(this.timer);
    this.timer = undefined;
  }

  private finish(outcome: QBlock2Outcome): void {
    this.state = 'done';
    this.clearTimer();
    this.settle.resolve(outcome);
  }

  private fail(e: Error): void {
    if (this.state === 'done' && !(this.bitmap?.complete ?? false)) return;
    this.state = 'done';
    this.clearTimer();
    this.settle.reject(e);
  }
}

/**
 * The missing blocks below `end` as Q-Block2 items: a run of missing blocks
 * that reaches the end of its MAX_PAYLOADS_SET becomes one item with M set
 * (Figure 11), other blocks one item each (Figure 10).
 */
export function compressRuns(bitmap: BlockBitmap, end: number, maxPayloads: number): QBlockItem[] {
  const items: QBlockItem[] = [];
  for (const r of bitmap.missingRanges(Number.MAX_SAFE_INTEGER)) {
    if (r.start >= end) break;
    let n = r.start;
    const stop = Math.min(r.end, end);
    while (n < stop) {
      const setEnd = Math.min(bitmap.total, (Math.floor(n / maxPayloads) + 1) * maxPayloads);
      // NUM 0 or a multiple of MAX_PAYLOADS with M set means 'entire body' or 'Continue': list those blocks singly.
      if (stop >= setEnd && setEnd - n > 1 && n % maxPayloads !== 0) {
        items.push({ num: n, more: true });
        n = setEnd;
      } else {
        items.push({ num: n, more: false });
        n++;
      }
    }
  }
  return items;
}
