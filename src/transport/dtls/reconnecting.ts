/**
 * A DTLS client transport that survives the loss of its session.
 *
 * With PSK a new handshake is cheap (RFC 7925 §4.2), and a server that restarted
 * or expired us answers nothing in our old epoch (RFC 6347 §4.2.8: it cannot
 * even send an alert we would accept). So the upper layer, which sees its
 * requests time out, calls `reconnect()`; a connection closed by the server
 * (close_notify, fatal alert) is re-established on the next `send()`.
 * A small wrapper around {@link connectDtls}, not a flag inside it.
 */
import { CoapfwError } from '../../errors.js';
import type { DatagramHandler, Peer, Transport } from '../../core/transport.js';
import { connectDtls, type DtlsClientOptions, type DtlsClientTransport } from './client.js';

/** A {@link Transport} to one DTLS server that handshakes again when needed. */
export class ReconnectingDtlsClient implements Transport {
  private handler: DatagramHandler = () => {};
  private current: DtlsClientTransport;
  private pending: Promise<DtlsClientTransport> | undefined;
  private closed = false;
  /** Handshakes completed, the first included. */
  connects = 1;

  private constructor(
    first: DtlsClientTransport,
    private readonly opts: DtlsClientOptions,
  ) {
    this.current = first;
    this.wire(first);
  }

  /** Connects once (failing fast on a wrong key or no server) and returns the transport. */
  static async connect(opts: DtlsClientOptions): Promise<ReconnectingDtlsClient> {
    return new ReconnectingDtlsClient(await connectDtls(opts), opts);
  }

  /** The server (IP literal and port) to pass as `peer` to send(). */
  get remote(): Peer {
    return this.current.remote;
  }

  async send(data: Uint8Array, peer: Peer): Promise<void> {
    if (this.closed) throw new CoapfwError('TRANSPORT_CLOSED', 'dtls: client is closed', { peer: this.remote });
    const t = this.current.isClosed ? await this.handshake() : this.current;
    return t.send(data, peer);
  }

  onMessage(handler: DatagramHandler): void {
    this.handler = handler;
  }

  address(): Peer {
    return this.current.address();
  }

  /** Drops the current connection and handshakes again (concurrent calls share one handshake). */
  async reconnect(): Promise<void> {
    if (this.closed) throw new CoapfwError('TRANSPORT_CLOSED', 'dtls: client is closed');
    await this.handshake();
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pending?.catch(() => undefined);
    await this.current.close();
  }

  private handshake(): Promise<DtlsClientTransport> {
    // The old socket must be closed first: with a fixed localPort the new one binds the same port.
    this.pending ??= this.current
      .close()
      .then(() => connectDtls({ ...this.opts, host: this.current.remote.address }))
      .then(async (t) => {
        if (this.closed) {
          await t.close();
          throw new CoapfwError('TRANSPORT_CLOSED', 'dtls: client closed during the handshake');
        }
        this.current = t;
        this.connects++;
        this.wire(t);
        return t;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  private wire(t: DtlsClientTransport): void {
    t.onMessage((data, peer) => {
      if (t === this.current) this.handler(data, peer);
    });
  }
}
