/**
 * Opening a client endpoint for a `coap://` or `coaps://` URI: resolve the
 * host, bind an ephemeral socket of the right address family (or handshake
 * DTLS 1.2 PSK for coaps, RFC 7252 §9.1), and give back a requester bound to
 * that peer.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { parseCoapUri, uriOptions, type CoapUri } from '../codec/uri.js';
import type { CoapOption } from '../codec/message.js';
import { CoapfwError } from '../errors.js';
import { withEcho } from '../messaging/echo.js';
import type { RequestOptions, RequestSpec, Requester } from '../core/request.js';
import { CoapEndpoint, type EndpointOptions } from '../messaging/endpoint.js';
import type { ResponseStream, StreamListener } from '../messaging/response-stream.js';
import type { Runtime } from '../core/runtime.js';
import type { CoapMessage } from '../codec/message.js';
import { systemRuntime } from '../transport/runtime.js';
// secure.js (and DTLS behind it) is loaded only for a coaps:// URI: a plain get starts faster without it.
import type { PskCredentials, SecureClientOptions } from './secure.js';
import type { Peer, Transport } from '../core/transport.js';
import { UdpTransport } from '../transport/udp.js';
import secureLoader from './load-secure.cjs';

/** A client endpoint talking to one server. */
export interface CoapClient {
  readonly uri: CoapUri;
  readonly peer: Peer;
  readonly endpoint: CoapEndpoint;
  readonly runtime: Runtime;
  /** Uri-Path and Uri-Query options of the URI. */
  readonly options: CoapOption[];
  request(spec: RequestSpec, options?: RequestOptions): Promise<CoapMessage>;
  /**
   * Requests to the server whose every response goes to `listener` (a
   * Q-Block2 flow, RFC 9177). An ICMP "unreachable" is an `onError` when
   * the client was opened with `unreachable: 'fail'`.
   */
  openStream(listener: StreamListener): ResponseStream;
  close(): Promise<void>;
}

/** Options of {@link openClient}. */
export interface ClientOptions extends Partial<Omit<EndpointOptions, 'runtime'>> {
  readonly runtime?: Runtime;
  /** Wrap the transport (e.g. to impair it in tests). */
  readonly wrapTransport?: (t: Transport) => Transport;
  /** Opens the secure transport for coaps:// URIs (takes precedence over `psk`). */
  readonly secureTransport?: (peer: Peer) => Promise<Transport>;
  /** PSK credentials for coaps:// URIs: the DTLS client is built from them (see {@link pskTransport}). */
  readonly psk?: PskCredentials;
  /** DTLS client tuning used with `psk` (handshake retries and timeouts, local port, signal). */
  readonly dtls?: SecureClientOptions;
  /**
   * What an ICMP "unreachable" for the server does (coap:// only; the UDP
   * socket is connected to the server so the kernel reports it). `'fail'`:
   * the requests in flight fail at once with UNREACHABLE, as libcoap's client
   * does, and a retry policy does not retry them. `'retry'` (default): it is
   * ignored; the request times out and the caller's retry policy decides (a
   * device waiting for its server to come back).
   */
  readonly unreachable?: 'fail' | 'retry';
}

/** Resolve a host name or IP literal to an address; `uri`, when given, is named in the BAD_URI error's `path`. */
export async function resolveHost(host: string, uri?: string): Promise<string> {
  if (isIP(host)) return host;
  try {
    return (await lookup(host)).address;
  } catch (e) {
    throw new CoapfwError('BAD_URI', `cannot resolve host '${host}'`, { cause: e, path: uri });
  }
}

/**
 * Open a client endpoint for `uri`. For `coaps://` pass `psk` (or your own
 * `secureTransport`); the handshake happens here and fails with
 * `DTLS_HANDSHAKE_FAILED` (wrong key or identity, or no server).
 *
 * @example
 * const c = await openClient('coaps://[::1]/fw/sha256/ab...', { psk: { identity: 'dev-1', key: '0x00112233...' } });
 */
export async function openClient(uri: string, options: ClientOptions = {}): Promise<CoapClient> {
  const parsed = parseCoapUri(uri);
  let peer: Peer = { address: await resolveHost(parsed.host, uri), port: parsed.port };
  let transport: Transport;
  let secure: Transport | undefined;
  const unreachable = new UnreachableGuard();
  const streams = new Set<StreamListener>();
  if (parsed.scheme === 'coaps') {
    const open = options.secureTransport ?? (options.psk ? (await secureLoader.loadSecure()).pskTransport(options.psk, options.dtls) : undefined);
    if (!open) throw new CoapfwError('BAD_URI', 'coaps:// needs PSK credentials (identity and key)', { path: uri });
    transport = secure = await open(peer);
    // A DTLS client delivers responses as coming from its `remote`: requests must name the same peer.
    const remote = (transport as Partial<{ remote: Peer }>).remote;
    if (remote !== undefined) peer = { address: remote.address, port: remote.port };
  } else {
    const onUnreachable = (e: CoapfwError): void => {
      unreachable.abort(e);
      streams.forEach((l) => l.onError?.(e));
    };
    // A Q-Block2 burst arrives faster than a small default socket buffer drains.
    transport = await UdpTransport.bind({ host: isIP(peer.address) === 6 ? '::' : '0.0.0.0', port: 0, connect: peer, recvBufferSize: 4 * 1024 * 1024, onUnreachable: options.unreachable === 'fail' ? onUnreachable : undefined });
  }
  if (options.wrapTransport) transport = options.wrapTransport(transport);
  const runtime = options.runtime ?? systemRuntime;
  const endpoint = new CoapEndpoint(transport, { ...options, runtime });
  const target = peer;
  const send: Requester = (spec, ro) => endpoint.request(target, spec, ro);
  // withEcho: a server guarding against amplification answers 4.01 + Echo once (RFC 9175 §2.4).
  const base = options.unreachable === 'fail' ? unreachable.wrap(send) : send;
  const chain = withEcho(secure ? (await secureLoader.loadSecure()).reconnectOnTimeout(secure, base) : base);
  return {
    uri: parsed,
    peer: target,
    endpoint,
    runtime,
    options: uriOptions(parsed),
    // Callers may leave out the per-call options; every wrapper below gets them.
    request: (spec, ro = {}) => chain(spec, ro),
    openStream: (listener) => {
      streams.add(listener);
      const s = endpoint.openStream(target, listener);
      return {
        send: (spec) => s.send(spec),
        resend: (spec, token) => s.resend(spec, token),
        close: () => {
          streams.delete(listener);
          s.close();
        },
      };
    },
    close: () => endpoint.close(),
  };
}

/**
 * Requests in flight fail with the UNREACHABLE error an ICMP message drew,
 * instead of the ABORTED the endpoint reports. One AbortController for all
 * the requests in flight (a new one after each ICMP error, for the requests
 * after it), and the caller's signal combined with it once per signal, not
 * per request: a controller and two listeners per block were a tenth of the
 * client's CPU on a fast link.
 */
class UnreachableGuard {
  private current = new AbortController();
  private combined = new WeakMap<AbortSignal, AbortSignal>();

  /** Fail every request in flight with `e`. */
  abort(e: CoapfwError): void {
    const c = this.current;
    this.current = new AbortController();
    this.combined = new WeakMap();
    c.abort(e);
  }

  wrap(request: Requester): Requester {
    return async (spec, ro) => {
      const mine = this.current.signal;
      const outer = ro.signal;
      let signal = mine;
      if (outer !== undefined) {
        let both = this.combined.get(outer);
        if (both === undefined) this.combined.set(outer, (both = AbortSignal.any([outer, mine])));
        signal = both;
      }
      try {
        return await request(spec, { ...ro, signal });
      } catch (e) {
        if (mine.aborted && !outer?.aborted) throw mine.reason;
        throw e;
      }
    };
  }
}
