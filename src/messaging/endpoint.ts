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
 *
 * The parts: request-server.ts answers requests, address-check.ts applies
 * RFC 9175 §2.4, requests.ts and response-stream.ts match responses,
 * reliability.ts retransmits; this file owns the transport and routes datagrams.
 */
import { EMPTY } from '../codec/bytes.js';
import { decodeMessage, encodeMessage, peekHeader, type CoapMessage } from '../codec/message.js';
import { Code, MessageType } from '../codec/numbers.js';
import { CoapfwError } from '../errors.js';
import { peerKey, type Peer, type Transport } from '../core/transport.js';
import { DedupCache } from './dedup.js';
import type { EndpointOptions, EndpointStats, PeerCheck, RequestHandler, ResponseSpec } from './endpoint-types.js';
import { exchangeLifetime, maxTransmitWait, resolveParams, type TransmissionParams } from './params.js';
import { Retransmitter } from './reliability.js';
import { RequestServer } from './request-server.js';
import { AddressCheck } from './address-check.js';
import type { RequestOptions, RequestSpec } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { PendingRequests } from './requests.js';
import { ResponseStreams, type ResponseStream, type StreamListener } from './response-stream.js';

export type { CoapRequest, EndpointOptions, EndpointStats, PeerCheck, RequestHandler, ResponseSpec } from './endpoint-types.js';

const IN_PLACE = { copy: false } as const;

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
  private readonly server: RequestServer;
  private nextMid: number;
  private closed = false;
  private readonly ackedResponses = new Set<string>();
  private readonly addresses: AddressCheck;

  constructor(
    private readonly transport: Transport,
    options: EndpointOptions,
  ) {
    this.runtime = options.runtime;
    this.params = resolveParams(options.params);
    this.dedup = new DedupCache(options.maxDedupEntries ?? 4096, options.dedupLifetimeMs ?? exchangeLifetime(this.params), options.maxReplayableResponses ?? 256);
    this.nextMid = Math.floor(this.runtime.random() * 0x10000);
    const send = (bytes: Uint8Array, peer: Peer): void => this.sendRaw(bytes, peer);
    this.retransmitter = new Retransmitter(this.params, this.runtime, send);
    const allocateMid = (): number => this.allocateMid();
    this.addresses = new AddressCheck(options.amplification, { runtime: this.runtime, retransmitter: this.retransmitter, maxRetransmit: this.params.maxRetransmit, stats: this.stats, allocateMid });
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
      allocateMid,
      send,
    });
    this.streams = new ResponseStreams({ runtime: this.runtime, tokenLength, allocateMid, send, retransmitter: this.retransmitter });
    this.server = new RequestServer({
      endpoint: this,
      runtime: this.runtime,
      dedup: this.dedup,
      stats: this.stats,
      responseCodes: this.responseCodes,
      requestCodes: this.requestCodes,
      maxConcurrent: options.maxConcurrentRequests ?? 4096,
      separateAfterMs: options.separateResponseAfterMs ?? 1000,
      isClosed: () => this.closed,
      sendRaw: send,
      sendMessage: (msg, peer) => this.sendMessage(msg, peer),
      allocateMid,
      sendConfirmable: (bytes, peer, mid, requestBytes, spent) => {
        this.retransmitter.start(bytes, peer, mid, () => {}, this.addresses.retransmitLimit(peer, requestBytes, spent, bytes.length));
      },
    });
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
    this.server.handler = handler;
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
    return this.addresses.isVerified(peer);
  }

  /** Vouch for `peer`'s address, e.g. after a valid RFC 9175 Echo value. */
  markVerified(peer: Peer): void {
    this.addresses.markVerified(peer);
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
    return this.addresses.verify(peer, requestBytes);
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
      this.retransmitter.start(bytes, peer, mid, (o) => resolve(o.kind === 'ack' ? 'ack' : o.kind === 'reset' ? 'reset' : 'timeout'), this.addresses.retransmitLimit(peer, requestBytes, bytes.length, bytes.length));
    });
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
      msg = decodeMessage(data, this.transport.freshDatagrams === true ? IN_PLACE : undefined);
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
      this.server.onRequest(msg, peer, size);
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

}
