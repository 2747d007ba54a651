/**
 * The datagram transport seen by the message layer. UDP, DTLS and the
 * impaired (lossy) test transport all implement it.
 */

/** A remote endpoint. `address` is an IP literal (v4 or v6), no brackets. */
export interface Peer {
  readonly address: string;
  readonly port: number;
}

/** Stable string key for a peer, e.g. for maps: `127.0.0.1:5683`, `[::1]:5683`. */
export function peerKey(peer: Peer): string {
  return peer.address.includes(':') ? `[${peer.address}]:${peer.port}` : `${peer.address}:${peer.port}`;
}

/** Handler for one received datagram. */
export type DatagramHandler = (data: Uint8Array, peer: Peer) => void;

/** A bound datagram socket (or a secure channel that behaves like one). */
export interface Transport {
  /** Send one datagram. Resolves once handed to the OS (or dropped by an impaired transport). */
  send(data: Uint8Array, peer: Peer): Promise<void>;
  /**
   * Optional fast path: send without reporting the outcome (errors go where
   * the transport reports them). The message layer, which ignores send
   * results anyway, uses it when present to save a promise per datagram.
   */
  post?(data: Uint8Array, peer: Peer): void;
  /** Install the receive handler (one per transport). */
  onMessage(handler: DatagramHandler): void;
  /**
   * True when every datagram given to the handler is a new buffer that the
   * transport never touches again (node:dgram allocates one per datagram):
   * the message layer then decodes it in place instead of copying it.
   */
  readonly freshDatagrams?: boolean;
  /** The local address the transport is bound to. */
  address(): Peer;
  /** Release the socket. Idempotent. */
  close(): Promise<void>;
}
