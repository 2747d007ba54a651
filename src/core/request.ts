/**
 * What a client request is, seen from every layer that makes or forwards
 * one: the message layer sends it, the block-wise fetcher and the device
 * client build it, wrappers (Echo, DTLS reconnect, retry) pass it through.
 */
import type { CoapMessage, CoapOption } from '../codec/message.js';

/** A request to send. Type defaults to CON. */
export interface RequestSpec {
  readonly code: number;
  readonly options?: readonly CoapOption[];
  readonly payload?: Uint8Array;
  readonly confirmable?: boolean;
}

/** Per-call options of a request. */
export interface RequestOptions {
  readonly signal?: AbortSignal;
  /** How long to wait for a NON response, or for a separate response after an empty ACK. */
  readonly responseTimeoutMs?: number;
}

/**
 * Sends one request to a peer fixed beforehand and resolves with its
 * response: a bound `CoapEndpoint.request`, or a wrapper around one.
 */
export type Requester = (spec: RequestSpec, options: RequestOptions) => Promise<CoapMessage>;
