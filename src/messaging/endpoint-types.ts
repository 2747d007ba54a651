/**
 * The types an endpoint's users see (RFC 7252 §4, §5): the request a handler
 * is given, the response it answers, the endpoint's options and counters.
 * Apart from endpoint.ts so that handlers (server/, blockwise/, gateway/)
 * depend on these shapes, not on the endpoint's machinery.
 */
import type { CoapMessage, CoapOption } from '../codec/message.js';
import type { Peer } from '../core/transport.js';
import type { Runtime } from '../core/runtime.js';
import type { CoapEndpoint } from './endpoint.js';
import type { TransmissionParams } from './params.js';
import type { AmplificationOptions } from './verified.js';

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
   * Responses to plain GETs kept to answer duplicates with, the newest this
   * many; a duplicate of an older GET is processed again (RFC 7252 §4.5
   * allows it for idempotent requests). Every other response is kept as
   * long as its dedup entry. Default 256.
   */
  readonly maxReplayableResponses?: number;
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

/** Outcome of {@link CoapEndpoint.verify}. */
export type PeerCheck = 'verified' | 'unanswered' | 'busy';
