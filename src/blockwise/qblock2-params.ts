/**
 * RFC 9177 §7.2 congestion control parameters for Non-confirmable Q-Block
 * transfers (Table 3) and the times derived from them. Per endpoint, validated
 * once at the boundary.
 */
import { CoapfwError } from '../errors.js';

/** RFC 9177 §7.2 parameters; times in milliseconds. */
export interface QBlockParams {
  /** Payloads sent in one MAX_PAYLOADS_SET. Both ends SHOULD agree. Default 10 (RFC 6928 IW10). */
  readonly maxPayloads: number;
  /** Delay between two MAX_PAYLOADS_SETs of a body. Default ACK_TIMEOUT, 2 s. */
  readonly nonTimeoutMs: number;
  /** NON_TIMEOUT_RANDOM lies in [NON_TIMEOUT, NON_TIMEOUT * ACK_RANDOM_FACTOR]. Default 1.5. */
  readonly ackRandomFactor: number;
  /** Wait for a missing payload before asking for it the first time; doubles per repeat. Default 2 * NON_TIMEOUT, 4 s. */
  readonly nonReceiveTimeoutMs: number;
  /** Requests for missing payloads without an answer before the body is given up. Default MAX_RETRANSMIT, 4. */
  readonly nonMaxRetransmit: number;
  /** MAX_LATENCY of RFC 7252 §4.8.2 (used in NON_PROBING_WAIT and NON_PARTIAL_TIMEOUT). Default 100 s. */
  readonly maxLatencyMs: number;
}

/** The RFC 9177 defaults (Table 3). */
export const DEFAULT_QBLOCK_PARAMS: QBlockParams = {
  maxPayloads: 10,
  nonTimeoutMs: 2000,
  ackRandomFactor: 1.5,
  nonReceiveTimeoutMs: 4000,
  nonMaxRetransmit: 4,
  maxLatencyMs: 100_000,
};

const bad = (msg: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `qblock params: ${msg}`);

/** Merge and validate user parameters. */
export function resolveQBlockParams(p: Partial<QBlockParams> = {}): QBlockParams {
  const r = { ...DEFAULT_QBLOCK_PARAMS, ...p };
  if (!Number.isInteger(r.maxPayloads) || r.maxPayloads < 1 || r.maxPayloads > 1024) throw bad(`maxPayloads must be an integer 1..1024, got ${r.maxPayloads}`);
  if (!(r.nonTimeoutMs > 0)) throw bad(`nonTimeoutMs must be > 0, got ${r.nonTimeoutMs}`);
  if (!(r.ackRandomFactor >= 1)) throw bad(`ackRandomFactor must be >= 1, got ${r.ackRandomFactor}`);
  // §7.2: NON_RECEIVE_TIMEOUT MUST exceed NON_TIMEOUT by at least one second, so the sender
  // can start the next MAX_PAYLOADS_SET before the receiver times out.
  if (!(r.nonReceiveTimeoutMs >= r.nonTimeoutMs + 1000)) {
    throw bad(`nonReceiveTimeoutMs must be at least nonTimeoutMs + 1000 (RFC 9177 §7.2), got ${r.nonReceiveTimeoutMs}`);
  }
  if (!Number.isInteger(r.nonMaxRetransmit) || r.nonMaxRetransmit < 0 || r.nonMaxRetransmit > 20) throw bad(`nonMaxRetransmit must be an integer 0..20, got ${r.nonMaxRetransmit}`);
  if (!(r.maxLatencyMs >= 0)) throw bad(`maxLatencyMs must be >= 0, got ${r.maxLatencyMs}`);
  return r;
}

/** NON_TIMEOUT_RANDOM: uniform in [NON_TIMEOUT, NON_TIMEOUT * ACK_RANDOM_FACTOR] (2..3 s by default). */
export function nonTimeoutRandom(p: QBlockParams, random: () => number): number {
  return p.nonTimeoutMs * (1 + random() * (p.ackRandomFactor - 1));
}

/** Time-to-Wait = NON_RECEIVE_TIMEOUT * 2^(Re-Request-Count - 1) (§7.2); `rerequests` >= 1. */
export function nonReceiveWait(p: QBlockParams, rerequests: number): number {
  return p.nonReceiveTimeoutMs * 2 ** Math.max(0, rerequests - 1);
}

/**
 * NON_PARTIAL_TIMEOUT = NON_TIMEOUT * (2^NON_MAX_RETRANSMIT - 1) * ACK_RANDOM_FACTOR
 * + 2 * MAX_LATENCY + NON_TIMEOUT (247 s by default): how long a partial body is kept.
 */
export function nonPartialTimeout(p: QBlockParams): number {
  return p.nonTimeoutMs * (2 ** p.nonMaxRetransmit - 1) * p.ackRandomFactor + 2 * p.maxLatencyMs + p.nonTimeoutMs;
}

/**
 * NON_PROBING_WAIT = NON_TIMEOUT * (2^NON_MAX_RETRANSMIT - 1) * ACK_RANDOM_FACTOR
 * + 2 * MAX_LATENCY + NON_TIMEOUT_RANDOM (247..248 s): the longest wait PROBING_RATE imposes.
 */
export function nonProbingWait(p: QBlockParams, random: () => number): number {
  return p.nonTimeoutMs * (2 ** p.nonMaxRetransmit - 1) * p.ackRandomFactor + 2 * p.maxLatencyMs + nonTimeoutRandom(p, random);
}
