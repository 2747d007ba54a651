/**
 * coapfw public API. Named exports only.
 */
export { CoapfwError, isCoapfwError, type CoapfwErrorCode } from './errors.js';
export { peerKey, type Peer, type Transport, type DatagramHandler } from './transport/types.js';
export * from './codec/numbers.js';
export * from './codec/message.js';
export { OPTION_DEFINITIONS, KNOWN_OPTIONS, type OptionDefinition, type OptionFormat } from './codec/options.js';
export * from './codec/block.js';
export * from './codec/uri.js';
export * from './codec/link-format.js';
export { createDtlsServer, DtlsServer, type DtlsServerOptions, type DtlsServerEvent, type DtlsServerStats } from './transport/dtls/server.js';
export { connectDtls, DtlsClientTransport, type DtlsClientOptions } from './transport/dtls/client.js';
export { PskStore, type PskLookup } from './transport/dtls/psk-store.js';
export { describeMessage } from './codec/describe.js';
