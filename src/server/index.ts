/**
 * The CoAP firmware server: every file of a directory by name and by
 * content address (`/fw/sha256/<hex>`), stateless Block2 (RFC 7959 §2),
 * Observe (RFC 7641), device status reports, optional Echo amplification
 * protection (RFC 9175), coaps, the trust resources of issue 14 (chain,
 * revocation list, coaps-only revocation sequence). Embeddable: bring your own resources,
 * transports and runtime; or take the pieces (repository, resolver, router)
 * and mount them yourself.
 *
 * @example
 * import { startFileServer, resourceTable } from 'coapfw/server';
 * import { Code } from 'coapfw/codec';
 * const server = await startFileServer({
 *   dir: './images',
 *   resources: resourceTable({ hello: { methods: new Set([Code.GET]), handle: () => ({ code: Code.CONTENT, payload: new TextEncoder().encode('hi') }) } }),
 *   links: [{ target: '/hello', attributes: {} }],
 * });
 */
export { startFileServer, bindDefault, listenDtls, type FileServer, type FileServerOptions, type PeerIdentity, type SecureListenOptions } from './serve.js';
export { FileRepository, type FileEntry, type FileRepositoryOptions } from './files.js';
export { directoryLinks, fileResources, type BodyServing, type FileResolver, type FileResourceOptions } from './file-server.js';
export { WellKnownCore, type WellKnownOptions, type WellKnownStats } from './well-known.js';
export { LinkIndex } from './link-index.js';
export { TokenBuckets, type RateLimit } from './rate-limit.js';
export { isHiddenName, isTemporaryName, type ScanFilterOptions } from './scan-filter.js';
export { SERVER_OPTIONS, firstResolver, resourceTable, routeRequests, type Resolver, type Resource } from './router.js';
export { errorResponse, toResponse } from './responses.js';
export { bodyFormat, bodyResponse, decodeBody, responseFormat, type BodyFormat, type DecodedBody } from './body.js';
export { echoGuard, type EchoGuardOptions, type EchoGuardStats } from './echo-guard.js';
export { ObserveRegistry, type ObserveOptions } from './observe.js';
export { StatusTracker, type DeviceStatus, type StatusOptions } from './status.js';
export { startTrustResources, type TrustResourceOptions, type TrustResources, type TrustServed } from './trust-resources.js';
export { directoryTrustSource, newestRevocation, storeTrustSource, type DirectoryTrustSourceOptions, type StoredTrustDocument, type TrustDocumentStore, type TrustDocuments, type TrustSource } from './trust-source.js';
export { serveBlock2, type Block2ServeOptions } from '../blockwise/serve.js';
export { Block1Receiver, withBlock1, type Block1Options, type Block1Stats, type BodyHandler } from '../blockwise/block1.js';
export { Block1Stream, type Block1StreamOptions, type Block1StreamStats, type UploadOpener, type UploadSink } from '../blockwise/block1-stream.js';
export { ETAG_LENGTH, bufferSource, type ByteSource } from '../blockwise/source.js';
export type { CoapRequest, RequestHandler, ResponseSpec } from '../messaging/endpoint.js';
