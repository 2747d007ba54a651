/**
 * The CoAP message layer (RFC 7252 §4) over any {@link Transport}: one
 * endpoint both serves requests and makes them.
 *
 * Server side: duplicate detection (§4.5) answering a duplicate CON with the
 * same response, piggybacked responses, an empty ACK and a separate CON
 * response when the handler is slow (§5.2.2), RST for CoAP ping (§4.3) and
 * for CONs it cannot process, a cap on requests being handled at once.
 * Client side: message IDs, random tokens (§5.3.1), CON retransmission with
 * exponential back-off (§4.2), token matching, NSTART (§4.7), RST for
 * unexpected CON responses, AbortSignal.
 */
import { decodeMessage, encodeMessage, peekHeader, type CoapMessage, type CoapOption } from '../codec/message.js';
import { Code, MessageType, OptionNumber } from '../codec/numbers.js';
import { encodeUint } from '../codec/options.js';
import { CoapfwError } from '../errors.js';
import { peerKey, type Peer, type Transport } from '../transport/types.js';
import { DedupCache } from './dedup.js';
import { noResponseSuppresses } from './no-response.js';
import { exchangeLifetime, maxTransmitWait, resolveParams, type TransmissionParams } from './params.js';
import { Retransmitter } from './reliability.js';
import type { Runtime } from './runtime.js';
import { PendingRequests } from './requests.js';
import { ResponseStreams, type ResponseStream, type StreamListener } from './response-stream.js';

/** A request as a handler sees it. */
export interface CoapRequest {
  readonly message: CoapMessage;
  readonly peer: Peer;
  /** The endpoint that received it, for later notifications (Observe). */
  readonly endpoint?: CoapEndpoint;
}

/** What a handler answers; the endpoint fills in type, message ID and token. */
export interface ResponseSpec {
  readonly code: number;
  readonly options?: readonly CoapOption[];
  readonly payload?: Uint8Array;
}

/**
 * Serves one request. `undefined` means no response: nothing for a NON, an
 * empty ACK for a CON (the endpoint also drops responses a No-Response
 * option, RFC 7967, asks it not to send).
 */
export type RequestHandler = (req: CoapRequest) => ResponseSpec | undefined | Promise<ResponseSpec | undefined>;

/** A request to send. Type defaults to CON. */
export interface RequestSpec {
  readonly code: number;
  readonly options?: readonly CoapOption[];
  readonly payload?: Uint8Array;
  readonly confirmable?: boolean;
}

/** Per-call options of {@link CoapEndpoint.request}. */
export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** How long to wait for a NON response, or for a separate response after an empty ACK. */
  readonly responseTimeoutMs?: number;
}

/** Endpoint configuration; every limit has a safe default. */
export interface EndpointOptions {
  readonly runtime: Runtime;
  readonly params?: Partial<TransmissionParams>;
  /** Remembered exchanges for duplicate detection. Default 4096. */
  readonly maxDedupEntries?: number;
  /** Dedup lifetime; default EXCHANGE_LIFETIME (§4.8.2). */
  readonly dedupLifetimeMs?: number;
  /**
   * Requests whose handler has not answered yet, at most; beyond this the
   * endpoint answers 5.03 with Max-Age 1. A memory bound (each holds its
   * request and a timer), not a bound on work: a server bounds its distinct
   * work itself (FileRepository's maxConcurrentReads), so that a thousand
   * devices waiting on one cold block are one read, not a thousand. Default 4096.
   */
  readonly maxConcurrentRequests?: number;
  /** Send an empty ACK when a handler has not answered a CON within this time. Default 1000 ms. */
  readonly separateResponseAfterMs?: number;
  /** Token length in bytes for our requests, 1..8. Default 8. */
  readonly tokenLength?: number;
}

/** Counters, for tests, logs and benchmarks. */
export interface EndpointStats {
  received: number;
  sent: number;
  malformed: number;
  duplicates: number;
  resets: number;
  overloaded: number;
}

/** A CoAP endpoint bound to one transport. */
export class CoapEndpoint {
  readonly stats: EndpointStats = { received: 0, sent: 0, malformed: 0, duplicates: 0, resets: 0, overloaded: 0 };
  readonly params: TransmissionParams;
  private readonly runtime: Runtime;
  private readonly dedup: DedupCache;
  private readonly retransmitter: Retransmitter;
  private readonly pending: PendingRequests;
  private readonly streams: ResponseStreams;
  private handler: RequestHandler | undefined;
  private nextMid: number;
  private inflight = 0;
  private readonly maxConcurrent: number;
  private readonly separateAfterMs: number;
  private closed = false;
  private readonly ackedResponses = new Set<string>();

  constructor(
    private readonly transport: Transport,
    options: EndpointOptions,
  ) {
    this.runtime = options.runtime;
    this.params = resolveParams(options.params);
    this.dedup = new DedupCache(options.maxDedupEntries ?? 4096, options.dedupLifetimeMs ?? exchangeLifetime(this.params));
    this.maxConcurrent = options.maxConcurrentRequests ?? 4096;
    this.separateAfterMs = options.separateResponseAfterMs ?? 1000;
    this.nextMid = Math.floor(this.runtime.random() * 0x10000);
    const send = (bytes: Uint8Array, peer: Peer): void => this.sendRaw(bytes, peer);
    this.retransmitter = new Retransmitter(this.params, this.runtime, send);
    const tokenLength = options.tokenLength ?? 8;
    if (!Number.isInteger(tokenLength) || tokenLength < 1 || tokenLength > 8) {
      throw new CoapfwError('INVALID_ARGUMENT', `endpoint: tokenLength must be 1..8, got ${tokenLength}`);
    }
    this.pending = new PendingRequests({
      runtime: this.runtime,
      retransmitter: this.retransmitter,
      nstart: this.params.nstart,
      tokenLength,
      defaultResponseTimeoutMs: maxTransmitWait(this.params),
      allocateMid: () => this.allocateMid(),
      send,
    });
    this.streams = new ResponseStreams({ runtime: this.runtime, tokenLength, allocateMid: () => this.allocateMid(), send, retransmitter: this.retransmitter });
    transport.onMessage((data, peer) => this.onDatagram(data, peer));
  }

  /** Requests whose every response (a Q-Block2 burst, RFC 9177) goes to `listener`; see response-stream.ts. */
  openStream(peer: Peer, listener: StreamListener): ResponseStream {
    return this.streams.open(peer, listener);
  }

  /** The local address of the underlying transport. */
  address(): Peer {
    return this.transport.address();
  }

  /** Install the request handler (server role). */
  handle(handler: RequestHandler): void {
    this.handler = handler;
  }

  /** Send a request and resolve with the response message. Rejects with TIMEOUT, RESET or ABORTED. */
  request(peer: Peer, spec: RequestSpec, options: RequestOptions = {}): Promise<CoapMessage> {
    if (this.closed) return Promise.reject(new CoapfwError('TRANSPORT_CLOSED', 'endpoint: closed'));
    return this.pending.request(peer, spec, options);
  }

  /** CoAP ping (§4.3): an empty CON that the peer answers with RST. Resolves when it does. */
  ping(peer: Peer, signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new CoapfwError('TRANSPORT_CLOSED', 'endpoint: closed'));
    return this.pending.ping(peer, signal);
  }

  /**
   * Send a response outside a request/response exchange, e.g. an Observe
   * notification (RFC 7641 §4.2) carrying the observer's token. A CON
   * resolves with 'ack', 'reset' (the client forgot us) or 'timeout'; a NON
   * resolves with 'sent'.
   */
  notify(peer: Peer, token: Uint8Array, spec: ResponseSpec, confirmable: boolean): Promise<'ack' | 'reset' | 'timeout' | 'sent'> {
    if (this.closed) return Promise.resolve('timeout');
    const mid = this.allocateMid();
    const msg: CoapMessage = {
      type: confirmable ? MessageType.CON : MessageType.NON,
      code: spec.code,
      messageId: mid,
      token,
      options: spec.options ?? [],
      payload: spec.payload ?? EMPTY,
    };
    if (!confirmable) {
      this.sendMessage(msg, peer);
      return Promise.resolve('sent');
    }
    return new Promise((resolve) => {
      this.retransmitter.start(encodeMessage(msg), peer, mid, (o) => resolve(o.kind === 'ack' ? 'ack' : o.kind === 'reset' ? 'reset' : 'timeout'));
    });
  }

  /** Number of remembered exchanges (bounded by maxDedupEntries). */
  get dedupSize(): number {
    return this.dedup.size;
  }

  /** Stop everything and close the transport. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pending.rejectAll(new CoapfwError('TRANSPORT_CLOSED', 'endpoint: closed'));
    this.retransmitter.cancelAll();
    await this.transport.close();
  }

  private allocateMid(): number {
    const mid = this.nextMid;
    this.nextMid = (this.nextMid + 1) & 0xffff;
    return mid;
  }

  private sendRaw(bytes: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    this.stats.sent++;
    if (this.transport.post) this.transport.post(bytes, peer);
    else this.transport.send(bytes, peer).catch(() => {});
  }

  private sendMessage(msg: CoapMessage, peer: Peer): Uint8Array {
    const bytes = encodeMessage(msg);
    this.sendRaw(bytes, peer);
    return bytes;
  }

  private onDatagram(data: Uint8Array, peer: Peer): void {
    if (this.closed) return;
    this.stats.received++;
    let msg: CoapMessage;
    try {
      msg = decodeMessage(data);
    } catch {
      this.stats.malformed++;
      // §4.2/§4.3: a CON we cannot process is rejected with RST; anything else is silently dropped.
      const h = peekHeader(data);
      if (h !== undefined && h.version === 1 && h.type === MessageType.CON) this.sendReset(h.messageId, peer);
      return;
    }
    try {
      this.dispatch(msg, peer);
    } catch {
      // A datagram must never take the endpoint down (e.g. a handler that returns an unencodable response).
      this.stats.malformed++;
    }
  }

  private dispatch(msg: CoapMessage, peer: Peer): void {
    const cls = msg.code >> 5;
    if (msg.code === Code.EMPTY) {
      this.onEmpty(msg, peer);
    } else if (cls === 0) {
      this.onRequest(msg, peer);
    } else if (cls === 2 || cls === 4 || cls === 5) {
      this.onResponse(msg, peer);
    } else if (msg.type === MessageType.CON) {
      // Reserved code classes 1, 6, 7 (§12.1): reject.
      this.sendReset(msg.messageId, peer);
    }
  }

  private sendReset(mid: number, peer: Peer): void {
    this.stats.resets++;
    this.sendMessage({ type: MessageType.RST, code: Code.EMPTY, messageId: mid, token: EMPTY, options: [], payload: EMPTY }, peer);
  }

  private onEmpty(msg: CoapMessage, peer: Peer): void {
    switch (msg.type) {
      case MessageType.CON:
        this.sendReset(msg.messageId, peer); // ping
        return;
      case MessageType.NON:
        return;
      case MessageType.ACK:
        this.retransmitter.settle(peer, msg.messageId, { kind: 'ack', data: EMPTY });
        return;
      case MessageType.RST:
        this.retransmitter.settle(peer, msg.messageId, { kind: 'reset' });
        return;
    }
  }

  private onResponse(msg: CoapMessage, peer: Peer): void {
    if (msg.type === MessageType.ACK) {
      // Piggybacked response: settles our CON, then goes to the request by token.
      this.retransmitter.settle(peer, msg.messageId, { kind: 'ack', data: EMPTY });
      if (!this.streams.deliver(msg, peer)) this.pending.deliver(msg, peer);
      return;
    }
    if (msg.type === MessageType.RST) return;
    const matched = this.streams.deliver(msg, peer) || this.pending.deliver(msg, peer);
    if (msg.type === MessageType.CON) {
      // A retransmission of a CON response we already took is ACKed again; any other unexpected one gets RST (§5.3.2).
      const key = `${peerKey(peer)}#${msg.messageId}`;
      if (matched) {
        this.ackedResponses.add(key);
        if (this.ackedResponses.size > 256) this.ackedResponses.delete(this.ackedResponses.values().next().value!);
      }
      if (matched || this.ackedResponses.has(key)) {
        this.sendMessage({ type: MessageType.ACK, code: Code.EMPTY, messageId: msg.messageId, token: EMPTY, options: [], payload: EMPTY }, peer);
      } else {
        this.sendReset(msg.messageId, peer); // §5.3.2: unexpected CON response
      }
    }
  }

  private onRequest(msg: CoapMessage, peer: Peer): void {
    if (msg.type === MessageType.ACK || msg.type === MessageType.RST) return; // not a valid request carrier
    const key = `${peerKey(peer)}#${msg.messageId}`;
    const now = this.runtime.now();
    const seen = this.dedup.get(key, now);
    if (seen !== undefined) {
      this.stats.duplicates++;
      // §4.5: a duplicate CON gets the same response; a NON duplicate is ignored.
      if (msg.type === MessageType.CON && seen.response !== undefined) this.sendRaw(seen.response, peer);
      return;
    }
    const entry = this.dedup.add(key, now);
    if (this.handler === undefined || this.inflight >= this.maxConcurrent) {
      this.stats.overloaded++;
      // RFC 7252 §5.9.3.4: Max-Age says when to try again; a second, not the 60 s default.
      entry.response = this.respond(msg, peer, { code: Code.SERVICE_UNAVAILABLE, options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(1) }] }, false);
      return;
    }
    let result: ResponseSpec | undefined | Promise<ResponseSpec | undefined>;
    try {
      result = this.handler({ message: msg, peer, endpoint: this });
    } catch {
      result = { code: Code.INTERNAL_SERVER_ERROR };
    }
    if (!(result instanceof Promise)) {
      entry.response = this.respond(msg, peer, result, false);
      return;
    }
    this.inflight++;
    let separate = false;
    const timer =
      msg.type === MessageType.CON
        ? this.runtime.setTimer(this.separateAfterMs, () => {
            separate = true;
            entry.response = this.sendMessage(emptyAck(msg.messageId), peer);
          })
        : undefined;
    result
      .catch((): ResponseSpec => ({ code: Code.INTERNAL_SERVER_ERROR }))
      .then((spec) => {
        this.inflight--;
        if (timer !== undefined) this.runtime.clearTimer(timer);
        const bytes = this.respond(msg, peer, spec, separate);
        if (!separate) entry.response = bytes;
      });
  }

  /**
   * Build and send the response to `req`; returns the bytes to replay for
   * duplicates. A handler result that cannot be encoded becomes a 5.00.
   */
  private respond(req: CoapMessage, peer: Peer, spec: ResponseSpec | undefined, separate: boolean): Uint8Array | undefined {
    if (this.closed) return undefined;
    try {
      return this.sendResponse(req, peer, spec, separate);
    } catch {
      return this.sendResponse(req, peer, { code: Code.INTERNAL_SERVER_ERROR }, separate);
    }
  }

  private sendResponse(req: CoapMessage, peer: Peer, answer: ResponseSpec | undefined, separate: boolean): Uint8Array | undefined {
    // RFC 7967: a response of a class the client said it does not want is not sent (a CON still gets its empty ACK).
    const spec = answer !== undefined && noResponseSuppresses(req, answer.code) ? undefined : answer;
    if (spec === undefined) {
      return req.type === MessageType.CON && !separate ? this.sendMessage(emptyAck(req.messageId), peer) : undefined;
    }
    const base = { code: spec.code, token: req.token, options: spec.options ?? [], payload: spec.payload ?? EMPTY };
    if (req.type === MessageType.CON && !separate) {
      return this.sendMessage({ ...base, type: MessageType.ACK, messageId: req.messageId }, peer);
    }
    if (separate) {
      // §5.2.2: the separate response is itself a CON, retransmitted until ACKed.
      const mid = this.allocateMid();
      const bytes = encodeMessage({ ...base, type: MessageType.CON, messageId: mid });
      this.retransmitter.start(bytes, peer, mid, () => {});
      return undefined;
    }
    this.sendMessage({ ...base, type: MessageType.NON, messageId: this.allocateMid() }, peer);
    return undefined;
  }
}

const EMPTY = new Uint8Array(0);

function emptyAck(mid: number): CoapMessage {
  return { type: MessageType.ACK, code: Code.EMPTY, messageId: mid, token: EMPTY, options: [], payload: EMPTY };
}
