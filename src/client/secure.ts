/**
 * coaps:// (RFC 7252 §9.1, DTLS 1.2 PSK per RFC 7925) for CoAP clients: turns
 * PSK credentials into the `secureTransport(peer)` factory that
 * {@link openClient} calls, and a request wrapper that handshakes again when a
 * session seems gone.
 *
 * Why reconnect on TIMEOUT: a server that restarted (or expired our session)
 * cannot answer anything in our old epoch, not even an alert we would accept
 * (RFC 6347 §4.2.8). Our requests then just time out. With PSK a new handshake
 * is cheap (RFC 7925 §4.2), so after a timed-out request we handshake again
 * before the caller's retry policy sends the next attempt.
 */
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { Requester } from '../core/request.js';
import type { DtlsClientOptions } from '../transport/dtls/client.js';
import { parsePskKey } from '../transport/dtls/psk-store.js';
import { ReconnectingDtlsClient } from '../transport/dtls/reconnecting.js';
import type { Peer, Transport } from '../core/transport.js';

/** PSK credentials of a coaps client (RFC 4279 §5.1). */
export interface PskCredentials {
  /** PSK identity, UTF-8. */
  readonly identity: string;
  /** The key: bytes, or text as on a command line (`0x<hex>`, `hex:<hex>`, else UTF-8, see {@link parsePskKey}). */
  readonly key: Uint8Array | string;
}

/** DTLS client tuning for coaps (handshake retries, timeouts, local port ...). */
export type SecureClientOptions = Partial<Omit<DtlsClientOptions, 'host' | 'port' | 'identity' | 'key'>>;

/** Checks PSK credentials at the public boundary and returns the key bytes. */
export function pskKeyBytes(psk: PskCredentials): Uint8Array {
  if (psk === null || typeof psk !== 'object') throw new CoapfwError('INVALID_ARGUMENT', 'psk: expected { identity, key }');
  if (typeof psk.identity !== 'string' || psk.identity === '') throw new CoapfwError('INVALID_ARGUMENT', 'psk: identity must be a non-empty string');
  if (typeof psk.key === 'string') return parsePskKey(psk.key, 'psk: key');
  if (!(psk.key instanceof Uint8Array) || psk.key.length === 0 || psk.key.length > 64) {
    throw new CoapfwError('INVALID_ARGUMENT', 'psk: key must be 1..64 bytes');
  }
  return psk.key;
}

/**
 * A `secureTransport` factory for {@link openClient}: handshakes with the peer
 * using `psk` and yields a {@link ReconnectingDtlsClient}. Rejects with
 * `DTLS_HANDSHAKE_FAILED` for a wrong key or identity (at once) or an
 * unreachable server (after the handshake retries).
 *
 * @example
 * const client = await openClient('coaps://fw.example/fw/x', { secureTransport: pskTransport({ identity: 'dev-1', key: '0x0011...' }) });
 */
export function pskTransport(psk: PskCredentials, options: SecureClientOptions = {}): (peer: Peer) => Promise<ReconnectingDtlsClient> {
  const key = pskKeyBytes(psk);
  return (peer) => ReconnectingDtlsClient.connect({ ...options, host: peer.address, port: peer.port, identity: psk.identity, key });
}

/**
 * Wraps `request` so that a TIMEOUT over a {@link ReconnectingDtlsClient}
 * triggers a new handshake before the error reaches the caller's retry.
 * Any other transport is returned unchanged.
 */
export function reconnectOnTimeout(transport: Transport | undefined, request: Requester): Requester {
  if (!(transport instanceof ReconnectingDtlsClient)) return request;
  return async (spec, options) => {
    try {
      return await request(spec, options);
    } catch (e) {
      if (isCoapfwError(e, 'TIMEOUT') && !options.signal?.aborted) {
        // A failed handshake is not this request's error: the retry will try again.
        await transport.reconnect().catch(() => undefined);
      }
      throw e;
    }
  };
}
