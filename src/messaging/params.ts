/**
 * CoAP transmission parameters (RFC 7252 §4.8) and the times derived from
 * them (§4.8.2). Per endpoint, never process-global.
 */
import { CoapfwError } from '../errors.js';

/** RFC 7252 §4.8 transmission parameters, in milliseconds where a time. */
export interface TransmissionParams {
  readonly ackTimeoutMs: number;
  readonly ackRandomFactor: number;
  readonly maxRetransmit: number;
  /** Outstanding interactions per peer (§4.7). */
  readonly nstart: number;
  /** Upper bound of the time a server may take before the client sees the response. */
  readonly maxLatencyMs: number;
  readonly processingDelayMs: number;
}

/** The RFC 7252 defaults. */
export const DEFAULT_PARAMS: TransmissionParams = {
  ackTimeoutMs: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  nstart: 1,
  maxLatencyMs: 100_000,
  processingDelayMs: 2000,
};

/** Merge and validate user parameters at the boundary. */
export function resolveParams(p: Partial<TransmissionParams> = {}): TransmissionParams {
  const r = { ...DEFAULT_PARAMS, ...p };
  if (!(r.ackTimeoutMs > 0)) throw new CoapfwError('INVALID_ARGUMENT', `params: ackTimeoutMs must be > 0, got ${r.ackTimeoutMs}`);
  if (!(r.ackRandomFactor >= 1)) throw new CoapfwError('INVALID_ARGUMENT', `params: ackRandomFactor must be >= 1, got ${r.ackRandomFactor}`);
  if (!Number.isInteger(r.maxRetransmit) || r.maxRetransmit < 0 || r.maxRetransmit > 20) {
    throw new CoapfwError('INVALID_ARGUMENT', `params: maxRetransmit must be an integer 0..20, got ${r.maxRetransmit}`);
  }
  if (!Number.isInteger(r.nstart) || r.nstart < 1) throw new CoapfwError('INVALID_ARGUMENT', `params: nstart must be an integer >= 1, got ${r.nstart}`);
  return r;
}

/** §4.8.2 MAX_TRANSMIT_SPAN: first to last retransmission of a CON. */
export function maxTransmitSpan(p: TransmissionParams): number {
  return p.ackTimeoutMs * (2 ** p.maxRetransmit - 1) * p.ackRandomFactor;
}

/** §4.8.2 MAX_TRANSMIT_WAIT: first transmission to giving up. */
export function maxTransmitWait(p: TransmissionParams): number {
  return p.ackTimeoutMs * (2 ** (p.maxRetransmit + 1) - 1) * p.ackRandomFactor;
}

/** §4.8.2 EXCHANGE_LIFETIME: how long a message ID must not be reused; also the dedup lifetime. */
export function exchangeLifetime(p: TransmissionParams): number {
  return maxTransmitSpan(p) + 2 * p.maxLatencyMs + p.processingDelayMs;
}
