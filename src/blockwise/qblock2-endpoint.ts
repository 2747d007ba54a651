/**
 * Q-Block2 on a {@link CoapEndpoint}: the adapters between the pure
 * Q-Block2 client and server and the message layer, using only the
 * endpoint's public API (`notify` for the server's extra responses,
 * `openStream` for the client's many-response requests).
 */
import type { CoapMessage } from '../codec/message.js';
import type { Requester } from '../core/request.js';
import type { Peer } from '../core/transport.js';
import type { CoapEndpoint } from '../messaging/endpoint.js';
import type { ResponseStream, StreamListener } from '../messaging/response-stream.js';
import { MAX_SZX } from '../codec/block.js';
import { QBlock2Client, type QBlock2ClientOptions, type QBlock2Outcome } from './qblock2-client.js';
import { probeRequest } from './qblock2-options.js';
import type { QBlock2Sender } from './qblock2-server.js';

/** A {@link QBlock2Sender} over an endpoint: NON responses, or CON ones retransmitted until ACKed (within the amplification budget). */
export function endpointSender(endpoint: CoapEndpoint): QBlock2Sender {
  return {
    send: (peer, token, spec, confirmable, requestBytes) => {
      // The outcome of a CON ('timeout', 'reset') needs no action: the client asks again for what it lacks.
      void endpoint.notify(peer, token, spec, confirmable, requestBytes);
    },
  };
}

/**
 * The default gate of a server endpoint (RFC 9175 §2.4): an address the
 * endpoint has verified may get bursts at once; any other is first sent a
 * CoAP ping within the request's amplification budget, and gets the burst
 * once it answered (it then holds the burst for one round trip).
 */
export function verifiedGate(endpoint: CoapEndpoint): (peer: Peer, requestBytes: number) => boolean | Promise<boolean> {
  return (peer, requestBytes) => endpoint.isVerified(peer) || endpoint.verify(peer, requestBytes).then((r) => r === 'verified');
}

/** What a Q-Block2 fetch needs: single requests through the caller's full path, and a stream for the many. */
export interface QBlock2Channel {
  readonly request: Requester;
  openStream(listener: StreamListener): ResponseStream;
}

/** A channel straight on an endpoint (no Echo or reconnect wrappers). */
export function endpointChannel(endpoint: CoapEndpoint, peer: Peer): QBlock2Channel {
  return { request: (spec, ro) => endpoint.request(peer, spec, ro), openStream: (l) => endpoint.openStream(peer, l) };
}

/** Options of {@link receiveQBlock2} and {@link fetchQBlock2}. */
export type ReceiveOptions = Omit<QBlock2ClientOptions, 'link' | 'mode'> & { readonly signal?: AbortSignal };

/**
 * Receive the body whose probe (qblock2-options.ts `probeRequest`) was
 * answered with `first`: 'complete', or 'fallback' when the server does not
 * do Q-Block2 (then fetch with Block2); rejects like {@link QBlock2Client}.
 */
export async function receiveQBlock2(channel: QBlock2Channel, first: CoapMessage, options: ReceiveOptions): Promise<QBlock2Outcome> {
  let client: QBlock2Client | undefined;
  const stream = channel.openStream({
    onResponse: (msg) => client?.onResponse(msg),
    onError: (e) => client?.onError(e),
  });
  client = new QBlock2Client({ ...options, mode: 'paced', link: { send: (spec) => stream.send(spec) } });
  const onAbort = (): void => client?.abort(options.signal?.reason);
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await client.startWith(first);
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stream.close();
  }
}

/**
 * Fetch one body with Q-Block2: the probe for the lowest block not held,
 * then {@link receiveQBlock2}. Without retries: the downloader
 * (blockwise/fetch.ts `fetchBody`) adds them.
 */
export async function fetchQBlock2(channel: QBlock2Channel, options: ReceiveOptions): Promise<QBlock2Outcome> {
  const held = options.held;
  const num = held === undefined ? 0 : held.complete ? held.total - 1 : held.nextMissing(0);
  const first = await channel.request(probeRequest(options.options, num, options.szx ?? MAX_SZX), { signal: options.signal });
  return receiveQBlock2(channel, first, options);
}
