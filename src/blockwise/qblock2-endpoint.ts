/**
 * Q-Block2 on a {@link CoapEndpoint}: the two adapters the integration needs,
 * using only the endpoint's public API (`notify` for the server's extra
 * responses, `openStream` for the client's many-response requests).
 */
import type { CoapEndpoint } from '../messaging/endpoint.js';
import type { Peer } from '../core/transport.js';
import { QBlock2Client, type QBlock2ClientOptions, type QBlock2Outcome } from './qblock2-client.js';
import type { QBlock2Sender } from './qblock2-server.js';

/** A {@link QBlock2Sender} over an endpoint: NON responses, or CON ones retransmitted until ACKed. */
export function endpointSender(endpoint: CoapEndpoint): QBlock2Sender {
  return {
    send: (peer, token, spec, confirmable) => {
      // The outcome of a CON ('timeout', 'reset') needs no action: the client asks again for what it lacks.
      void endpoint.notify(peer, token, spec, confirmable);
    },
  };
}

/**
 * Fetch one body from `peer` with Q-Block2 through `endpoint`. Resolves with
 * 'complete', or with 'fallback' when the server does not do Q-Block2 (then
 * fetch with Block2); rejects like {@link QBlock2Client}. `signal` aborts.
 */
export async function fetchQBlock2(
  endpoint: CoapEndpoint,
  peer: Peer,
  options: Omit<QBlock2ClientOptions, 'link'> & { readonly signal?: AbortSignal },
): Promise<QBlock2Outcome> {
  let client: QBlock2Client | undefined;
  const stream = endpoint.openStream(peer, {
    onResponse: (msg) => client?.onResponse(msg),
    onError: (e) => client?.onError(e),
  });
  client = new QBlock2Client({ ...options, link: { send: (spec) => void stream.send(spec) } });
  const onAbort = (): void => client?.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await client.start();
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stream.close();
  }
}
