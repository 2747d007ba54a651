/**
 * Options, events and counters of the DTLS server (server.ts), and their
 * validation at the public boundary. Every limit has a safe default.
 */
import { CoapfwError } from '../../errors.js';
import type { Peer, Transport } from '../../core/transport.js';
import type { PskLookup } from './psk-store.js';

/** Options of {@link createDtlsServer}. Every limit has a safe default. */
export interface DtlsServerOptions {
  /** Plain datagram transport to run over (UDP, impaired...). The server owns it: close() closes it. */
  readonly transport?: Transport;
  /** Where to bind a UDP socket when no transport is given. Default 127.0.0.1, ephemeral port. */
  readonly bind?: { readonly host?: string; readonly port?: number };
  /** PSK table (e.g. a {@link PskStore}). */
  readonly psk: PskLookup;
  /** psk_identity_hint to send; none by default (RFC 7925 §4.2). */
  readonly hint?: string;
  /**
   * Maximum sessions, handshakes included; when full, the oldest unfinished
   * handshake of the address with the most of them makes room. Default 1000.
   */
  readonly maxSessions?: number;
  /** Unfinished handshakes per source IP address (any port); a new one evicts that address's oldest. Default 8. */
  readonly maxHandshakesPerAddress?: number;
  /** Established sessions per PSK identity; a new one closes that identity's oldest. Default 4. */
  readonly maxSessionsPerIdentity?: number;
  /** Established sessions idle this long are dropped. Default 300 000 ms. */
  readonly idleTimeoutMs?: number;
  /**
   * Handshakes not finished after this long are dropped. Default: the time
   * flight 4's retransmission schedule takes to give up (63 000 ms with the
   * default 1000 ms and 5 retransmissions), see {@link retransmitScheduleMs}.
   */
  readonly handshakeTimeoutMs?: number;
  /** First retransmission timeout of flight 4 (RFC 6347 §4.2.4.1). Default 1000 ms. */
  readonly retransmitMs?: number;
  /** Retransmissions of flight 4 before giving up, an integer >= 0. Default 5. */
  readonly maxRetransmits?: number;
  /** Cookie secret rotation period. Default 60 000 ms. */
  readonly cookieLifetimeMs?: number;
  /** Largest datagram we build when packing a flight. Default 1200. */
  readonly mtu?: number;
  /** Observer of session life-cycle events (logging, metrics). */
  readonly onEvent?: (event: DtlsServerEvent) => void;
}

/** Session life-cycle events. */
export type DtlsServerEvent =
  | { readonly type: 'established'; readonly peer: Peer; readonly identity: string }
  | { readonly type: 'handshake-failed'; readonly peer: Peer; readonly reason: string }
  | { readonly type: 'closed'; readonly peer: Peer; readonly reason: string }
  | { readonly type: 'internal-error'; readonly peer: Peer; readonly error: unknown };

/** Counters, for tests and monitoring. */
export interface DtlsServerStats {
  datagrams: number;
  helloVerifyRequests: number;
  handshakesStarted: number;
  handshakesOk: number;
  handshakesFailed: number;
  sessionsReplaced: number;
  /** Cookie-bearing ClientHellos dropped because the same (peer, client_random) already started a handshake. */
  staleHellosDropped: number;
  sessionsRejected: number;
  /** Unfinished handshakes evicted because their source address reached `maxHandshakesPerAddress`. */
  handshakesEvictedPerAddress: number;
  /** Established sessions closed because their identity exceeded `maxSessionsPerIdentity`. */
  sessionsClosedPerIdentity: number;
  sessionsExpired: number;
  recordsDropped: number;
  replaysDropped: number;
  badRecordsDropped: number;
  internalErrors: number;
}

/** Options with every default applied and every limit validated. */
export type ResolvedDtlsServerOptions = Required<
  Pick<DtlsServerOptions, 'maxSessions' | 'maxHandshakesPerAddress' | 'maxSessionsPerIdentity' | 'idleTimeoutMs' | 'handshakeTimeoutMs' | 'retransmitMs' | 'maxRetransmits' | 'mtu' | 'cookieLifetimeMs'>
> &
  DtlsServerOptions;

/** Validates `options` at the public boundary and fills in the defaults. */
export function resolveDtlsServerOptions(options: DtlsServerOptions): ResolvedDtlsServerOptions {
  if (options === null || typeof options !== 'object' || typeof options.psk?.lookup !== 'function') {
    throw new CoapfwError('INVALID_ARGUMENT', 'dtls server: options.psk with a lookup(identity) method is required');
  }
  const retransmitMs = positive('retransmitMs', options.retransmitMs, 1000);
  const maxRetransmits = count('maxRetransmits', options.maxRetransmits, 5, 0);
  return {
    ...options,
    maxSessions: count('maxSessions', options.maxSessions, 1000, 1),
    maxHandshakesPerAddress: count('maxHandshakesPerAddress', options.maxHandshakesPerAddress, 8, 1),
    maxSessionsPerIdentity: count('maxSessionsPerIdentity', options.maxSessionsPerIdentity, 4, 1),
    idleTimeoutMs: positive('idleTimeoutMs', options.idleTimeoutMs, 300_000),
    handshakeTimeoutMs: positive('handshakeTimeoutMs', options.handshakeTimeoutMs, retransmitScheduleMs(retransmitMs, maxRetransmits)),
    retransmitMs,
    maxRetransmits,
    mtu: positive('mtu', options.mtu, 1200),
    cookieLifetimeMs: positive('cookieLifetimeMs', options.cookieLifetimeMs, 60_000),
  };
}

function count(name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) throw new CoapfwError('INVALID_ARGUMENT', `dtls server: ${name} must be an integer >= ${min}, got ${v}`);
  return v;
}

/**
 * How long flight 4's retransmission schedule runs before the server gives up:
 * the first timeout, doubled after each of `maxRetransmits` retransmissions,
 * each capped at 60 s (RFC 6347 §4.2.4.1).
 */
export function retransmitScheduleMs(retransmitMs: number, maxRetransmits: number): number {
  let total = 0;
  for (let k = 0; k <= maxRetransmits; k++) total += Math.min(retransmitMs * 2 ** k, 60_000);
  return total;
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new CoapfwError('INVALID_ARGUMENT', `dtls server: ${name} must be a positive number, got ${v}`);
  return v;
}
