/**
 * Datagram transports and the CoAP endpoint that runs on them: UDP (IPv4 and
 * IPv6), DTLS 1.2 PSK (RFC 6347, profile RFC 7925) as our own server and as a
 * client on node-dtls-client, and {@link CoapEndpoint}, the message layer
 * (RFC 7252 §4: CON/ACK, retransmission, deduplication, tokens, NSTART) over
 * any {@link Transport}. Bring your own transport by implementing the
 * interface.
 *
 * @example
 * import { CoapEndpoint, UdpTransport, systemRuntime } from 'coapfw/transport';
 * const endpoint = new CoapEndpoint(await UdpTransport.bind({ host: '::', port: 5683 }), { runtime: systemRuntime });
 * endpoint.handle(myHandler); // or server.handler from coapfw/server
 */
export { peerKey, type DatagramHandler, type Peer, type Transport } from '../core/transport.js';
export type { Runtime, TimerHandle } from '../core/runtime.js';
export type { RequestOptions, RequestSpec, Requester } from '../core/request.js';
export { systemRuntime } from './runtime.js';
export { UdpTransport, type UdpOptions } from './udp.js';
export {
  CoapEndpoint,
  type CoapRequest,
  type EndpointOptions,
  type EndpointStats,
  type RequestHandler,
  type ResponseSpec,
} from '../messaging/endpoint.js';
export { DEFAULT_PARAMS, exchangeLifetime, maxTransmitSpan, maxTransmitWait, resolveParams, type TransmissionParams } from '../messaging/params.js';
export {
  createDtlsServer,
  connectDtls,
  retransmitScheduleMs,
  DtlsClientTransport,
  DtlsServer,
  PskStore,
  ReconnectingDtlsClient,
  parsePskKey,
  type DtlsClientOptions,
  type DtlsServerEvent,
  type DtlsServerOptions,
  type DtlsServerStats,
  type PskLookup,
} from './dtls/index.js';
