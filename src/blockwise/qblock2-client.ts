/**
 * Q-Block2 client (RFC 9177 §4.4, §7.2): receives a body as NON responses
 * into an exact bitmap, asks for what is missing, and reports when the
 * server does not do Q-Block2 (4.02, or a response without Q-Block2) so the
 * caller falls back to Block2.
 *
 * Two pacing modes, both sending only messages of RFC 9177's forms:
 * - 'paced' (default): the first request (§4.1: Confirmable, to learn that
 *   the server supports Q-Block2) asks for the lowest missing block alone;
 *   then a congestion controller (messaging/congestion.ts) keeps a window of
 *   blocks asked for and not yet arrived, asked for with NON requests for
 *   missing blocks (a block not yet received is missing), at most
 *   MAX_PAYLOADS per request; lost ones are found from later arrivals and
 *   asked for again within about one RTT (qblock2-window.ts).
 * - 'rfc': exactly §7.2: one request for the entire body, a 'Continue' when
 *   a whole MAX_PAYLOADS_SET arrived; NON_RECEIVE_TIMEOUT after the last
 *   payload one request listing the missing blocks, the wait doubling per
 *   repeat, given up after NON_MAX_RETRANSMIT (qblock2-rfc.ts).
 *
 * A partial body is kept for NON_PARTIAL_TIMEOUT or the body's Max-Age
 * (§4.4, qblock2-lifetime.ts): nothing arriving for that long fails the
 * fetch with TIMEOUT (the downloader resumes it).
 */
import { equalBytes } from '@noble/curves/utils.js';
import { blockSize, MAX_SZX } from '../codec/block.js';
import type { CoapMessage } from '../codec/message.js';
import { Code } from '../codec/numbers.js';
import { CoapfwError } from '../errors.js';
import type { RequestSpec } from '../core/request.js';
import type { TimerHandle } from '../core/runtime.js';
import { BlockBitmap, blockCount } from './bitmap.js';
import { checkPayload, classifyFirst, responseCodeError, type BodyShape, type QBlock2Payload } from './qblock2-check.js';
import { EchoRepeater } from './qblock2-echo.js';
import { PartialLifetime } from './qblock2-lifetime.js';
import { bodyRequest, probeRequest } from './qblock2-options.js';
import { nonPartialTimeout, resolveQBlockParams, type QBlockParams } from './qblock2-params.js';
import { RfcPacer } from './qblock2-rfc.js';
import { SinkChain } from './qblock2-sink.js';
import type { Pacer, PacerHost, QBlock2ClientOptions, QBlock2ClientStats, QBlock2Outcome } from './qblock2-types.js';
import { WindowPacer } from './qblock2-window.js';

export type { Pacer, PacerHost, QBlock2ClientOptions, QBlock2ClientStats, QBlock2Link, QBlock2Outcome } from './qblock2-types.js';

type State = 'idle' | 'probing' | 'receiving' | 'done';

/** Receives one body with Q-Block2. */
export class QBlock2Client implements PacerHost {
  readonly stats: QBlock2ClientStats = { requests: 0, blocks: 0, duplicates: 0, rerequested: 0, continues: 0 };
  readonly params: QBlockParams;
  readonly done: Promise<QBlock2Outcome>;
  private state: State = 'idle';
  private readonly maxSize: number;
  private shapeValue: BodyShape | undefined;
  private bitmapValue: BlockBitmap | undefined;
  private pacer: Pacer | undefined;
  private timer: TimerHandle | undefined;
  /** When the armed timer fires, and when its work is due (later, when the deadline moved out since). */
  private timerAt = 0;
  private dueAt = 0;
  private readonly sinks = new SinkChain();
  private settle!: { resolve: (o: QBlock2Outcome) => void; reject: (e: Error) => void };
  private readonly echo = new EchoRepeater();
  private readonly lifetime: PartialLifetime;

  constructor(readonly o: QBlock2ClientOptions) {
    this.params = resolveQBlockParams(o.params);
    this.maxSize = o.maxSize ?? 16 * 1024 * 1024;
    blockSize(o.szx ?? MAX_SZX); // validates
    if (o.maxAhead !== undefined && !(Number.isInteger(o.maxAhead) && o.maxAhead >= 1)) {
      throw new CoapfwError('INVALID_ARGUMENT', `q-block2: maxAhead must be an integer >= 1, got ${o.maxAhead}`);
    }
    this.lifetime = new PartialLifetime(this.params, o.runtime.now());
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // A failure nobody awaits yet must not become an unhandled rejection before the caller looks.
    this.done.catch(() => undefined);
  }

  get shape(): BodyShape {
    return this.shapeValue!;
  }

  get bitmap(): BlockBitmap {
    return this.bitmapValue!;
  }

  get unsunk(): number {
    return this.sinks.unsunk;
  }

  /**
   * Send the first request through the link and receive the body: 'rfc',
   * the request for the entire body (Figure 8: GET QB2:0/1/1024); 'paced',
   * the probe for the lowest block not held (see {@link startWith}).
   */
  start(): Promise<QBlock2Outcome> {
    if (this.state !== 'idle') return this.done;
    const szx = this.o.szx ?? MAX_SZX;
    const held = this.o.held;
    if (this.o.mode === 'rfc') {
      if (held !== undefined && held.count > 0) throw new CoapfwError('INVALID_ARGUMENT', "q-block2: 'rfc' mode asks for the entire body; resume ('held') in 'paced' mode");
      this.send(bodyRequest(this.o.options, szx, this.o.confirmableFirst ?? true));
    } else {
      this.send(probeRequest(this.o.options, held === undefined ? 0 : held.complete ? held.total - 1 : held.nextMissing(0), szx));
    }
    this.state = 'probing';
    this.armTimer(nonPartialTimeout(this.params));
    return this.done;
  }

  /**
   * 'paced': go on from the answer to a probe (qblock2-options.ts
   * `probeRequest` for the lowest missing block), made by the caller through
   * its request path (retransmission, Echo, reconnects).
   */
  startWith(response: CoapMessage): Promise<QBlock2Outcome> {
    if (this.state !== 'idle') return this.done;
    this.state = 'probing';
    this.onResponse(response);
    return this.done;
  }

  /** A response carrying one of our tokens. */
  onResponse(msg: CoapMessage): void {
    if (this.state === 'done' || this.state === 'idle') return;
    try {
      if (this.state === 'probing') {
        const kind = classifyFirst(msg);
        if (kind === 'bad-option' || kind === 'no-qblock2') return this.finish({ kind: 'fallback', reason: kind, response: msg });
        if (kind === 'error' && !this.repeatWithEcho(msg)) throw responseCodeError(msg);
        if (kind === 'error') return;
      } else if (msg.code === Code.UNAUTHORIZED && this.repeatWithEcho(msg)) {
        return;
      }
      this.lifetime.note(msg, this.o.runtime.now());
      this.accept(checkPayload(msg, this.shapeValue, this.maxSize));
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

  /** Send a request (a pacing mode calls this). */
  send(spec: RequestSpec): void {
    this.stats.requests++;
    const token = this.o.link.send(spec);
    if (token !== undefined) this.echo.remember(token, spec);
  }

  /**
   * Arm the one timer (a pacing mode calls this). In 'paced' mode the
   * partial-body lifetime caps it; 'rfc' mode gives up by its own schedule
   * (NON_MAX_RETRANSMIT requests, §7.2).
   */
  armTimer(ms: number): void {
    const now = this.o.runtime.now();
    const paced = this.o.mode !== 'rfc';
    const idleLeft = paced ? this.lifetime.leftMs(now) : Infinity;
    // Never 0: a deadline a hair away would otherwise fire again and again at one instant.
    const delay = Math.max(0.5, Math.min(ms, idleLeft));
    this.dueAt = now + delay;
    // Re-armed on nearly every payload, mostly later: a timer due no later stays and, firing early, sets itself for the rest.
    if (this.timer !== undefined && this.timerAt <= this.dueAt) return;
    this.clearTimer();
    this.setTimerFor(delay);
  }

  private setTimerFor(delay: number): void {
    this.timerAt = this.o.runtime.now() + delay;
    this.timer = this.o.runtime.setTimer(delay, () => {
      this.timer = undefined;
      const left = this.dueAt - this.o.runtime.now();
      if (left > 0) return this.setTimerFor(Math.max(0.5, left));
      const paced = this.o.mode !== 'rfc';
      try {
        if (this.state === 'probing') throw new CoapfwError('TIMEOUT', 'q-block2: no answer to the first request');
        if (this.state !== 'receiving') return;
        const idle = this.lifetime.idleMs(this.o.runtime.now());
        if (paced && idle >= this.lifetime.limitMs) {
          throw new CoapfwError('TIMEOUT', `q-block2: nothing arrived for ${Math.round(idle)} ms (RFC 9177 §4.4: the partial body is given up)`);
        }
        this.pacer!.onTimer();
      } catch (e) {
        this.fail(e as Error);
      }
    });
  }

  /** RFC 9175 §2.4: repeat the request a 4.01 with an Echo value answers, once (qblock2-echo.ts). False when `msg` is not such an answer. */
  private repeatWithEcho(msg: CoapMessage): boolean {
    const again = this.echo.repeatFor(msg);
    if (again !== undefined) this.send(again);
    return again !== undefined;
  }

  private accept(p: QBlock2Payload): void {
    const first = this.shapeValue === undefined;
    if (first) {
      this.begin(p);
      if (this.state === 'done') return; // every block was already held
    }
    const bitmap = this.bitmap;
    const pacer = this.pacer!;
    // A block the caller could not hold yet (a server bursting past what was
    // asked) is dropped unrecorded: still missing, it is asked for in its turn.
    const ahead = this.o.maxAhead;
    if (ahead !== undefined && !bitmap.has(p.num) && p.num >= bitmap.nextMissing(0) + ahead) {
      this.stats.beyond = (this.stats.beyond ?? 0) + 1;
      return;
    }
    if (!bitmap.set(p.num)) {
      // §4.4: a duplicate block with the same ETag is silently ignored.
      this.stats.duplicates++;
      pacer.onPayload(p.num);
      // A resume probes a block it holds when its record ends there: the flow must still start.
      if (first) pacer.onBlock(p.num);
      return;
    }
    this.stats.blocks++;
    const sink = this.o.onBlock(p);
    if (sink instanceof Promise) this.track(sink);
    if (bitmap.complete) return this.complete();
    pacer.onPayload(p.num);
    pacer.onBlock(p.num);
  }

  /**
   * Follow the sink's promise for a block: once it settles the pacer may
   * ask for more (back-pressure through `unsunk`); a sink that fails ends the
   * transfer at once with its error, not at completion.
   */
  private track(sink: Promise<void>): void {
    const onSunk = (): void => {
      if (this.state !== 'receiving') return;
      try {
        this.pacer?.onSunk?.();
      } catch (e) {
        this.fail(e as Error);
      }
    };
    this.sinks.track(sink, onSunk, (e) => this.fail(e));
  }

  /** The first payload fixes block size, Size2 and ETag (§4.4); held blocks are marked. */
  private begin(p: QBlock2Payload): void {
    const asked = this.o.szx ?? MAX_SZX;
    if (p.szx > asked) throw new CoapfwError('BLOCK_MISMATCH', `q-block2: server raised the block size to ${blockSize(p.szx)} (asked ${blockSize(asked)})`);
    if (this.o.etag !== undefined && (p.etag === undefined || !equalBytes(p.etag, this.o.etag))) {
      throw new CoapfwError('ETAG_MISMATCH', 'q-block2: the body changed since the transfer began (ETag differs)');
    }
    const total = blockCount(p.size, blockSize(p.szx));
    this.shapeValue = { szx: p.szx, size: p.size, total, etag: p.etag };
    this.bitmapValue = new BlockBitmap(total);
    const held = this.o.held;
    const shift = asked - p.szx;
    if (held !== undefined) for (let n = 0; n < total; n++) if (held.has(n >> shift)) this.bitmapValue.set(n);
    this.state = 'receiving';
    if (this.o.mode === 'rfc') {
      this.pacer = new RfcPacer(this);
      // The body request (Figure 8) draws the rest of the first MAX_PAYLOADS_SET.
      const mp = this.params.maxPayloads;
      const asked1: number[] = [];
      for (let n = 0; n < Math.min(total, mp); n++) asked1.push(n);
      this.pacer.begin(asked1);
    } else {
      this.pacer = new WindowPacer(this);
      this.pacer.begin([]);
    }
    if (this.bitmapValue.complete) this.complete();
  }

  private complete(): void {
    if (this.state === 'done') return;
    const shape = this.shape;
    this.state = 'done';
    this.clearTimer();
    this.pacer?.report?.(this.stats);
    this.sinks.settled.then(
      () => this.settle.resolve({ kind: 'complete', size: shape.size, etag: shape.etag, szx: shape.szx, stats: this.stats }),
      (e: unknown) => this.settle.reject(e as Error),
    );
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
    if (this.state === 'done') return;
    this.state = 'done';
    this.clearTimer();
    // Whatever the sink still writes belongs to this run: let it settle before the caller moves on.
    this.sinks.settled.then(
      () => this.settle.reject(e),
      () => this.settle.reject(e),
    );
  }
}
