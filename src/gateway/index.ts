/**
 * The gateway: a caching CoAP proxy between devices and an update server,
 * for the local infrastructure that devices reach instead of the server.
 *
 * - Forward proxy (RFC 7252 §5.7: Proxy-Uri, Proxy-Scheme; coap and coaps
 *   upstream) and a mirror of the upstream under the gateway's own paths.
 * - A block-wise cache by content address (`/fw/sha256/<hex>`): each image
 *   fetched upstream once, kept on disk within a size limit, served block by
 *   block statelessly while it still fills (5.03 + Max-Age for the blocks not
 *   there yet), never served when its bytes do not hash to its address; ETag
 *   revalidation (2.03) for the rest (manifests, files).
 * - Verification on behalf of devices: SUIT envelopes checked against the
 *   gateway's trust anchors (signature, class, vendor, rollback) before they
 *   are relayed; refusals counted and logged.
 * - Registrations and reports stored on disk while the uplink is down and
 *   forwarded in order when it is back, none lost and none twice.
 * - Discovery on the local link (the All-CoAP-Nodes groups, `rt=firmware`).
 * - coaps both ways: the devices' PSKs towards them, the gateway's own identity upstream.
 *
 * @example
 * import { startGateway } from 'coapfw/gateway';
 * const gw = await startGateway({ upstream: 'coaps://fw.example', upstreamPsk: { identity: 'gw-7', key: '0x00112233...' }, cacheDir: '/var/cache/coapfw-gw', discovery: true });
 * console.log(gw.stats().cache.hits);
 * await gw.close();
 */
export { startGateway, looksLikeEnvelope, type Gateway } from './gateway.js';
export type { DiscoverySettings, GatewayEvent, GatewayOptions, GatewayStats } from './options.js';
export { BlockCache, requestedRange, type BlockCacheOptions, type BlockCacheStats, type CacheEvent, type ImageCheck } from './content-cache.js';
export { Fill, type BlockFetcher, type FillFailure, type FillState, type ResumeFrom, type TransferMode } from './fill.js';
export { ValidatedCache, type Loaded, type Representation, type ValidatedCacheOptions, type ValidatedCacheStats } from './validated-cache.js';
export { EnvelopeGuard, type CheckedEnvelope, type EnvelopePolicy, type RefusalReason, type VerificationEvent, type VerificationStats } from './verify.js';
export { ReportQueue, type QueuedReport, type ReportItem, type ReportKind, type ReportOutcome, type ReportQueueOptions, type ReportQueueStats } from './report-queue.js';
export { ReportForwarder, type ForwarderOptions, type ForwarderStats, type UpstreamSend } from './forwarder.js';
export { RecordJournal, type JournalOpen, type JournalOptions, type JournalRecord } from './journal.js';
export { DeviceRelay, type DeviceEvent, type DeviceRelayOptions } from './devices.js';
export { proxyHandler, proxyTarget, isProxyRequest, type ProxyHandlerOptions } from './proxy.js';
export { discoveryHandler, type DiscoveryOptions } from './discovery.js';
export { MulticastListener, ALL_COAP_NODES, type Membership, type MulticastOptions } from './multicast.js';
export { GATEWAY_RT, gatewayLinks, serviceLinks } from './links.js';
export { OriginPool, Uplink, originOf, isUplinkFailure, type OriginPoolOptions } from './upstream.js';
export type { Target } from './relay.js';
export { ObserveRelay, type NotificationCheck, type ObserveRelayOptions, type ObserveRelaySettings, type ObserveRelayStats } from './observe-relay.js';
