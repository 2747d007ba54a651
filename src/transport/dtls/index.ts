/**
 * DTLS 1.2 PSK transports (RFC 6347, RFC 4279, RFC 6655, profile RFC 7925).
 *
 * - {@link createDtlsServer}: our own server, a {@link Transport} that yields
 *   decrypted datagrams per peer.
 * - {@link connectDtls} / {@link ReconnectingDtlsClient}: the client on
 *   node-dtls-client 2.0.3 with handshake retry.
 * - {@link PskStore}: the server's identity -> key table (file, reload).
 */
export { createDtlsServer, DtlsServer, retransmitScheduleMs, type DtlsServerEvent, type DtlsServerOptions, type DtlsServerStats } from './server.js';
export { connectDtls, DtlsClientTransport, type DtlsClientOptions } from './client.js';
export { ReconnectingDtlsClient } from './reconnecting.js';
export { PSK_ROLES, PskStore, parsePskKey, type PskLookup, type PskRole, type PskRoles } from './psk-store.js';
