/**
 * A transport wrapper that lets a test see (and drop) datagrams on their way:
 * `received` before the wrapped handler gets one (return false to drop it),
 * `sent` before it goes out, by `send` or the `post` fast path alike (kept
 * when the inner transport has it).
 *
 * @example
 * let gets = 0;
 * const t = tapTransport(await UdpTransport.bind({ host: '127.0.0.1', port: 0 }), { received: () => void gets++ });
 */
import type { Peer, Transport } from '../core/transport.js';

/** What a {@link tapTransport} calls. */
export interface Tap {
  /** A datagram arrived from `peer`; `false` drops it (as a lost datagram). */
  received?(data: Uint8Array, peer: Peer): boolean | void;
  /** A datagram is about to be sent to `peer`. */
  sent?(data: Uint8Array, peer: Peer): void;
}

/** `inner`, with `tap` told of every datagram in and out. */
export function tapTransport(inner: Transport, tap: Tap): Transport {
  const sent = tap.sent ?? (() => {});
  const post = inner.post?.bind(inner);
  return {
    send: (data, peer) => (sent(data, peer), inner.send(data, peer)),
    post: post ? (data, peer) => (sent(data, peer), post(data, peer)) : undefined,
    onMessage: (handler) =>
      inner.onMessage((data, peer) => {
        if (tap.received?.(data, peer) !== false) handler(data, peer);
      }),
    address: () => inner.address(),
    close: () => inner.close(),
  };
}
