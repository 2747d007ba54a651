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
import { EMPTY } from '../codec/bytes.js';
import { decodeMessage, encodeMessage, peekHeader, type CoapMessage, type CoapOption } from '../codec/message.js';
import { Code, MessageType, OptionNumber } from '../codec/numbers.js';
import { encodeUint } from '../codec/options.js';
import { CoapfwError } from '../errors.js';
import { peerKey, type Peer, type Transport } from '../core/transport.js';
import { DedupCache } from './dedup.js';
import { noResponseSuppresses } from './no-response.js';
import { exchangeLifetime, maxTransmitWait, resolveParams, type TransmissionParams } from './params.js';
import { Retransmitter } from './reliability.js';
import { resolveAmplification, retransmissionsWithin, VerifiedPeers, type AmplificationLimits, type AmplificationOptions } from './verified.js';
import type { RequestOptions, RequestSpec } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { PendingRequests } from './requests.js';
import { publish } from '../diagnostics.js';
import { ResponseStreams, type ResponseStream, type StreamListener } from './response-stream.js';

/** A request as a handler sees it. */
export interface CoapRequest {
  readonly message: CoapMessage;
  readonly peer: Peer;
  /** The endpoint that received it, for later notifications (Observe). */
  readonly endpoint?: CoapEndpoint;
  /** Size of the request datagram in bytes (the base of the amplification budget, RFC 9175 §2.4). */
  readonly size?: number;
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
  /**
   * RFC 9175 §2.4 limits for peers whose address is not verified (see
   * verified.ts): on by default. `false` when the transport itself proves
   * every address (DTLS: its cookie exchange does).
   */
  readonly amplification?: AmplificationOptions | false;
}

/** Counters, for tests, logs and benchmarks. */
export interface EndpointStats {
  received: number;
  sent: number;
  malformed: number;
  duplicates: number;
  resets: number;
  overloaded: number;
  /** CON retransmissions not made because the peer's address is not verified (RFC 9175 §2.4). */
  withheld: number;
  /** Datagram bytes received and sent (retransmissions included). */
  bytesIn: number;
  bytesOut: number;
}

/** A CoAP endpoint bound to one transport. */
export class CoapEndpoint {
  readonly stats: EndpointStats = { received: 0, sent: 0, malformed: 0, duplicates: 0, resets: 0, overloaded: 0, withheld: 0, bytesIn: 0, bytesOut: 0 };
  /**
   * Responses sent to requests, by code (index = the code byte, 0x45 for
   * 2.05): one typed-array increment per response, read by metrics at scrape time.
   */
  readonly responseCodes = new Uint32Array(256);
  /** Requests received (duplicates not counted), by method code (1 GET, 2 POST, ...). */
  readonly requestCodes = new Uint32Array(32);
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
  /** Undefined when every address counts as verified (amplification: false). */
  private readonly amplification: AmplificationLimits | undefined;
  private readonly verifiedPeers: VerifiedPeers | undefined;
  /** Address checks in flight, by peer key. */
  private readonly verifying = new Map<string, Promise<PeerCheck>>();

  constructor(
    private readonly transport: Transport,
    options: EndpointOptions,
  ) {
    this.runtime = options.runtime;
    this.params = resolveParams(options.params);
    this.dedup = new DedupCache(options.maxDedupEntries ?? 4096, options.dedupLifetimeMs ?? exchangeLifetime(this.params));
    this.maxConcurrent = options.maxConcurrentRequests ?? 4096;
    this.separateAfterMs = options.separateResponseAfterMs ?? 1000;
    if (options.amplification !== false) {
      this.amplification = resolveAmplification(options.amplification);
      this.verifiedPeers = new VerifiedPeers(this.runtime, this.amplification);
    }
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

  /** Whether `peer` has shown it receives at its address (always true with `amplification: false`). */
  isVerified(peer: Peer): boolean {
    return this.verifiedPeers?.has(peer) ?? true;
  }

  /** Vouch for `peer`'s address, e.g. after a valid RFC 9175 Echo value. */
  markVerified(peer: Peer): void {
    this.verifiedPeers?.add(peer);
  }

  /**
   * Make sure `peer` receives at its address before anything large goes to
   * it: 'verified' at once when it is, else after it answers a CoAP ping
   * (§4.3: an empty CON, which any endpoint answers with RST). The pings stay
   * within the amplification budget of a request of `requestBytes`, so a
   * spoofed request draws no more than that. 'unanswered' when no answer
   * came; 'busy' when `maxPendingVerifications` checks are already running.
   */
  verify(peer: Peer, requestBytes: number): Promise<PeerCheck> {
    if (this.closed) return Promise.resolve('unanswered');
    if (this.isVerified(peer)) return Promise.resolve('verified');
    const key = peerKey(peer);
    const running = this.verifying.get(key);
    if (running !== undefined) return running;
    const limits = this.amplification!;
    if (this.verifying.size >= limits.maxPendingVerifications) return Promise.resolve('busy');
    const mid = this.allocateMid();
    const ping = encodeMessage({ type: MessageType.CON, code: Code.EMPTY, messageId: mid, token: EMPTY, options: [], payload: EMPTY });
    // Budget: the request's factor, less an empty ACK the endpoint may send meanwhile, less the first ping.
    const n = retransmissionsWithin(limits.factor * requestBytes, EMPTY_ACK_SIZE + ping.length, ping.length, this.params.maxRetransmit);
    const check = new Promise<PeerCheck>((resolve) => {
      this.retransmitter.start(ping, peer, mid, (o) => resolve(o.kind === 'ack' || o.kind === 'reset' ? 'verified' : 'unanswered'), n);
    }).finally(() => this.verifying.delete(key));
    this.verifying.set(key, check);
    return check;
  }

  /**
   * Send a response outside a request/response exchange, e.g. an Observe
   * notification (RFC 7641 §4.2) carrying the observer's token. A CON
   * resolves with 'ack', 'reset' (the client forgot us) or 'timeout'; a NON
   * resolves with 'sent'. To an unverified address a CON is retransmitted
   * only within the amplification budget of the `requestBytes` that asked for it.
   */
  notify(peer: Peer, token: Uint8Array, spec: ResponseSpec, confirmable: boolean, requestBytes = 0): Promise<'ack' | 'reset' | 'timeout' | 'sent'> {
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
    const bytes = encodeMessage(msg);
    return new Promise((resolve) => {
      this.retransmitter.start(bytes, peer, mid, (o) => resolve(o.kind === 'ack' ? 'ack' : o.kind === 'reset' ? 'reset' : 'timeout'), this.retransmitLimit(peer, requestBytes, bytes.length, bytes.length));
    });
  }

  /**
   * Retransmissions allowed for a CON of `size` bytes to `peer`: all of them
   * to a verified address; to an unverified one, those that fit in the
   * budget of a `requestBytes` request after the `spent` bytes (RFC 9175 §2.4).
   */
  private retransmitLimit(peer: Peer, requestBytes: number, spent: number, size: number): number {
    const max = this.params.maxRetransmit;
    if (this.amplification === undefined || this.isVerified(peer)) return max;
    const n = retransmissionsWithin(this.amplification.factor * requestBytes, spent, size, max);
    this.stats.withheld += max - n;
    return n;
  }

  /** CON retransmissions made so far (RFC 7252 §4.2), requests, separate responses and notifications alike. */
  get retransmissions(): number {
    return this.retransmitter.retransmissions;
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
    this.stats.bytesOut += bytes.length;
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
    this.stats.bytesIn += data.length;
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
      this.dispatch(msg, peer, data.length);
    } catch {
      // A datagram must never take the endpoint down (e.g. a handler that returns an unencodable response).
      this.stats.malformed++;
    }
  }

  private dispatch(msg: CoapMessage, peer: Peer, size: number): void {
    const cls = msg.code >> 5;
    if (msg.code === Code.EMPTY) {
      this.onEmpty(msg, peer);
    } else if (cls === 0) {
      this.onRequest(msg, peer, size);
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
      // An ACK or RST carrying the ID of a CON we sent proves the peer received it (see verified.ts).
      case MessageType.ACK:
        if (this.retransmitter.settle(peer, msg.messageId, { kind: 'ack', data: EMPTY })) this.markVerified(peer);
        return;
      case MessageType.RST:
        if (this.retransmitter.settle(peer, msg.messageId, { kind: 'reset' })) this.markVerified(peer);
        return;
    }
  }

  private onResponse(msg: CoapMessage, peer: Peer): void {
    if (msg.type === MessageType.ACK) {
      // Piggybacked response: settles our CON, then goes to the request by token.
      const settled = this.retransmitter.settle(peer, msg.messageId, { kind: 'ack', data: EMPTY });
      const delivered = this.streams.deliver(msg, peer) || this.pending.deliver(msg, peer);
      if (delivered || settled) this.markVerified(peer);
      return;
    }
    if (msg.type === MessageType.RST) return;
    const matched = this.streams.deliver(msg, peer) || this.pending.deliver(msg, peer);
    if (matched) this.markVerified(peer); // it carries the random token of our request
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

  private onRequest(msg: CoapMessage, peer: Peer, size: number): void {
    if (msg.type === MessageType.ACK || msg.type === MessageType.RST) return; // not a valid request carrier
    const key = cachedPeerKey(peer);
    const now = this.runtime.now();
    const seen = this.dedup.get(key, msg.messageId, now);
    if (seen !== undefined) {
      this.stats.duplicates++;
      // §4.5: a duplicate CON gets the same response; a NON duplicate is ignored.
      if (msg.type === MessageType.CON && seen.response !== undefined) this.sendRaw(seen.response, peer);
      return;
    }
    const entry = this.dedup.add(key, msg.messageId, now);
    this.requestCodes[msg.code & 0x1f]!++;
    if (this.handler === undefined || this.inflight >= this.maxConcurrent) {
      this.stats.overloaded++;
      // RFC 7252 §5.9.3.4: Max-Age says when to try again; a second, not the 60 s default.
      entry.response = this.respond(msg, peer, { code: Code.SERVICE_UNAVAILABLE, options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(1) }] }, false, size);
      return;
    }
    let result: ResponseSpec | undefined | Promise<ResponseSpec | undefined>;
    try {
      result = this.handler({ message: msg, peer, endpoint: this, size });
    } catch (e) {
      handlerError(e, peer, 'handler threw');
      result = { code: Code.INTERNAL_SERVER_ERROR };
    }
    if (!(result instanceof Promise)) {
      entry.response = this.respond(msg, peer, result, false, size);
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
      .catch((e: unknown): ResponseSpec => {
        handlerError(e, peer, 'handler rejected');
        return { code: Code.INTERNAL_SERVER_ERROR };
      })
      .then((spec) => {
        this.inflight--;
        if (timer !== undefined) this.runtime.clearTimer(timer);
        const bytes = this.respond(msg, peer, spec, separate, size);
        if (!separate) entry.response = bytes;
      });
  }

  /**
   * Build and send the response to `req`; returns the bytes to replay for
   * duplicates. A handler result that cannot be encoded becomes a 5.00.
   */
  private respond(req: CoapMessage, peer: Peer, spec: ResponseSpec | undefined, separate: boolean, size: number): Uint8Array | undefined {
    if (this.closed) return undefined;
    try {
      return this.sendResponse(req, peer, spec, separate, size);
    } catch (e) {
      handlerError(e, peer, 'response could not be encoded');
      return this.sendResponse(req, peer, { code: Code.INTERNAL_SERVER_ERROR }, separate, size);
    }
  }

  private sendResponse(req: CoapMessage, peer: Peer, answer: ResponseSpec | undefined, separate: boolean, size: number): Uint8Array | undefined {
    // RFC 7967: a response of a class the client said it does not want is not sent (a CON still gets its empty ACK).
    const spec = answer !== undefined && noResponseSuppresses(req, answer.code) ? undefined : answer;
    if (spec === undefined) {
      return req.type === MessageType.CON && !separate ? this.sendMessage(emptyAck(req.messageId), peer) : undefined;
    }
    this.responseCodes[spec.code & 0xff]!++;
    // Built field by field, not spread from a shared base: this runs once per block served.
    const options = spec.options ?? NO_OPTIONS;
    const payload = spec.payload ?? EMPTY;
    if (req.type === MessageType.CON && !separate) {
      return this.sendMessage({ type: MessageType.ACK, code: spec.code, messageId: req.messageId, token: req.token, options, payload }, peer);
    }
    if (separate) {
      // §5.2.2: the separate response is itself a CON, retransmitted until ACKed;
      // to an unverified address only as the budget allows after the empty ACK and its first copy.
      const mid = this.allocateMid();
      const bytes = encodeMessage({ type: MessageType.CON, code: spec.code, messageId: mid, token: req.token, options, payload });
      this.retransmitter.start(bytes, peer, mid, () => {}, this.retransmitLimit(peer, size, EMPTY_ACK_SIZE + bytes.length, bytes.length));
      return undefined;
    }
    this.sendMessage({ type: MessageType.NON, code: spec.code, messageId: this.allocateMid(), token: req.token, options, payload }, peer);
    return undefined;
  }
}

/** A handler's failure that became a 5.00: said on the coapfw:error channel, never swallowed silently. */
function handlerError(error: unknown, peer: Peer, where: string): void {
  publish('error', () => ({ where: `endpoint: ${where}`, error, peer: peerKey(peer) }));
}

const NO_OPTIONS: readonly CoapOption[] = [];

// Transports that hand out one Peer object per remote address (udp.ts does) make this a lookup, not a string built per datagram.
const peerKeys = new WeakMap<Peer, string>();

function cachedPeerKey(peer: Peer): string {
  let k = peerKeys.get(peer);
  if (k === undefined) {
    k = peerKey(peer);
    peerKeys.set(peer, k);
  }
  return k;
}

/** An empty ACK (or ping, or RST) is its 4-byte header. */
const EMPTY_ACK_SIZE = 4;

/** Outcome of {@link CoapEndpoint.verify}. */
export type PeerCheck = 'verified' | 'unanswered' | 'busy';

function emptyAck(mid: number): CoapMessage {
  return { type: MessageType.ACK, code: Code.EMPTY, messageId: mid, token: EMPTY, options: [], payload: EMPTY };
}
