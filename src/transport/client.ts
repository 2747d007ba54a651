/**
 * Opening a client endpoint for a `coap://` URI: resolve the host, bind an
 * ephemeral socket of the right address family, and give back a requester
 * bound to that peer. (`coaps://` goes through the DTLS client transport.)
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { parseCoapUri, uriOptions, type CoapUri } from '../codec/uri.js';
import type { CoapOption } from '../codec/message.js';
import { CoapfwError } from '../errors.js';
import { CoapEndpoint, type EndpointOptions, type RequestOptions, type RequestSpec } from '../messaging/endpoint.js';
import type { Runtime } from '../messaging/runtime.js';
import type { CoapMessage } from '../codec/message.js';
import { systemRuntime } from './runtime.js';
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
  /** Opens the secure transport for coaps:// URIs. */
  readonly secureTransport?: (peer: Peer) => Promise<Transport>;
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

/** Open a client endpoint for `uri`. */
export async function openClient(uri: string, options: ClientOptions = {}): Promise<CoapClient> {
  const parsed = parseCoapUri(uri);
  const peer: Peer = { address: await resolveHost(parsed.host), port: parsed.port };
  let transport: Transport;
  if (parsed.scheme === 'coaps') {
    if (!options.secureTransport) throw new CoapfwError('BAD_URI', 'coaps:// needs PSK credentials (identity and key)');
    transport = await options.secureTransport(peer);
  } else {
    transport = await UdpTransport.bind({ host: isIP(peer.address) === 6 ? '::' : '0.0.0.0', port: 0 });
  }
  if (options.wrapTransport) transport = options.wrapTransport(transport);
  const runtime = options.runtime ?? systemRuntime;
  const endpoint = new CoapEndpoint(transport, { ...options, runtime });
  return {
    uri: parsed,
    peer,
    endpoint,
    runtime,
    options: uriOptions(parsed),
    request: (spec, ro) => endpoint.request(peer, spec, ro),
    close: () => endpoint.close(),
  };
}
