/**
 * Datagram transports: UDP (IPv4 and IPv6) and DTLS 1.2 PSK (RFC 6347,
 * profile RFC 7925), as our own server and as a client on node-dtls-client.
 * Each is a {@link Transport}; bring your own by implementing the interface.
 * The CoAP endpoint that runs on any of them is in `coapfw/messaging`.
 *
 * @example
 * import { UdpTransport, systemRuntime } from 'coapfw/transport';
 * import { CoapEndpoint } from 'coapfw/messaging';
 * const endpoint = new CoapEndpoint(await UdpTransport.bind({ host: '::', port: 5683 }), { runtime: systemRuntime });
 */
export { peerKey, type DatagramHandler, type Peer, type Transport } from '../core/transport.js';
export type { Runtime, TimerHandle } from '../core/runtime.js';
export { systemRuntime } from './runtime.js';
export { nativeUdpAvailable, UdpTransport, type UdpOptions } from './udp.js';
export {
  createDtlsServer,
  connectDtls,
  retransmitScheduleMs,
  DtlsClientTransport,
  DtlsServer,
  PSK_ROLES,
  PskStore,
  ReconnectingDtlsClient,
  parsePskKey,
  type DtlsClientOptions,
  type DtlsServerEvent,
  type DtlsServerOptions,
  type DtlsServerStats,
  type PskLookup,
  type PskRole,
  type PskRoles,
} from './dtls/index.js';
