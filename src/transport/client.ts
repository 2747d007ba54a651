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
import { CoapEndpoint, type EndpointOptions, type RequestOptions, type RequestSpec } from '../messaging/endpoint.js';
import type { Runtime } from '../messaging/runtime.js';
import type { CoapMessage } from '../codec/message.js';
import { systemRuntime } from './runtime.js';
import { pskTransport, reconnectOnTimeout, type PskCredentials, type SecureClientOptions } from './secure.js';
import type { Peer, Transport } from './types.js';
import { UdpTransport } from './udp.js';

/** A client endpoint talking to one server. */
export interface CoapClient {
  readonly uri: CoapUri;
  readonly peer: Peer;
  readonly endpoint: CoapEndpoint;
  readonly runtime: Runtime;
  /** Uri-Path and Uri-Query options of the URI. */
  readonly options: CoapOption[];
  request(spec: RequestSpec, options?: RequestOptions): Promise<CoapMessage>;
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
}

/** Resolve a host name or IP literal to an address. */
export async function resolveHost(host: string): Promise<string> {
  if (isIP(host)) return host;
  try {
    return (await lookup(host)).address;
  } catch (e) {
    throw new CoapfwError('BAD_URI', `cannot resolve host '${host}'`, { cause: e });
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
  let peer: Peer = { address: await resolveHost(parsed.host), port: parsed.port };
  let transport: Transport;
  let secure: Transport | undefined;
  if (parsed.scheme === 'coaps') {
    const open = options.secureTransport ?? (options.psk ? pskTransport(options.psk, options.dtls) : undefined);
    if (!open) throw new CoapfwError('BAD_URI', 'coaps:// needs PSK credentials (identity and key)');
    transport = secure = await open(peer);
    // A DTLS client delivers responses as coming from its `remote`: requests must name the same peer.
    const remote = (transport as Partial<{ remote: Peer }>).remote;
    if (remote !== undefined) peer = { address: remote.address, port: remote.port };
  } else {
    transport = await UdpTransport.bind({ host: isIP(peer.address) === 6 ? '::' : '0.0.0.0', port: 0 });
  }
  if (options.wrapTransport) transport = options.wrapTransport(transport);
  const runtime = options.runtime ?? systemRuntime;
  const endpoint = new CoapEndpoint(transport, { ...options, runtime });
  const target = peer;
  return {
    uri: parsed,
    peer: target,
    endpoint,
    runtime,
    options: uriOptions(parsed),
    // withEcho: a server guarding against amplification answers 4.01 + Echo once (RFC 9175 §2.4).
    request: withEcho(reconnectOnTimeout(secure, (spec, ro) => endpoint.request(target, spec, ro ?? {}))),
    close: () => endpoint.close(),
  };
}
