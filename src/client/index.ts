/**
 * The client side: open a coap:// or coaps:// client (DTLS 1.2 PSK), fetch a
 * resource block by block (RFC 7959 §2.4) from any block with the ETag
 * checked on each, and download it into a file or any sink, resuming where
 * an earlier run stopped. A client's `request` already answers RFC 9175
 * Echo challenges and re-handshakes DTLS after a server restart.
 *
 * @example
 * import { openClient, downloadToFile } from 'coapfw/client';
 * const client = await openClient('coap://[::1]/files/fw.bin');
 * try {
 *   const r = await downloadToFile(client, 'coap://[::1]/files/fw.bin', 'fw.bin', { resume: true });
 *   console.log(`${r.bytes} bytes, ${r.resumedFrom} of them from an earlier run`);
 * } finally {
 *   await client.close();
 * }
 */
export { openClient, resolveHost, type ClientOptions, type CoapClient } from './open.js';
export { pskKeyBytes, pskTransport, reconnectOnTimeout, type PskCredentials, type SecureClientOptions } from './secure.js';
export { FileSink, downloadToFile } from './file-sink.js';
export {
  downloadToSink,
  type DownloadOptions,
  type DownloadResult,
  type DownloadSink,
  type DownloadTarget,
  type ResumePoint,
  type ResumeState,
} from '../blockwise/download.js';
export { fetchAll, fetchBlocks, isRetryLater, isTransient, retryAfterMs, type FetchedBlock, type FetchOptions, type FetchProgress } from '../blockwise/fetch.js';
export { sendBlock1, type Block1Progress, type Block1Request, type Block1SendOptions } from '../blockwise/block1-send.js';
export type { RetryPolicy } from '../messaging/retry.js';
export type { RequestOptions, RequestSpec, Requester } from '../core/request.js';
export { discover, multicastInterfaces, type DiscoverOptions, type Discovered, type MulticastInterface } from './discover.js';
