/**
 * Requests whose responses keep coming: a Q-Block2 request draws a burst of
 * responses with its token (RFC 9177 §4.4), and a body is fetched with many
 * requests, each with a new token (§6). A stream sends requests with fresh
 * tokens and hands every response carrying any of them to one listener,
 * until it is closed. The endpoint asks the streams before its one-response
 * requests (requests.ts).
 *
 * Bounded: a stream remembers its last `maxTokens` tokens (a late response to
 * an older one is dropped like any unmatched NON); CONs are retransmitted by
 * the endpoint's Retransmitter (RFC 7252 §4.2).
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { encodeMessage, type CoapMessage } from '../codec/message.js';
import { MessageType } from '../codec/numbers.js';
import { CoapfwError } from '../errors.js';
import { peerKey, type Peer } from '../core/transport.js';
import type { RequestSpec } from '../core/request.js';
import type { ConOutcome, Retransmitter } from './reliability.js';
import type { Runtime } from '../core/runtime.js';

/** Receives what a stream's requests draw. */
export interface StreamListener {
  /** A response carrying one of the stream's tokens. */
  onResponse(msg: CoapMessage): void;
  /** A CON of the stream was rejected with RST or never acknowledged (TIMEOUT, RESET). */
  onError?(error: CoapfwError): void;
}

/** An open stream of requests to one peer. */
export interface ResponseStream {
  /** Send `spec` with a fresh token (CON unless `confirmable` is false); returns the token. */
  send(spec: RequestSpec): Uint8Array;
  /**
   * Send `spec` again with `token`, one this stream sent before and still
   * remembers: an Observe re-registration keeps its token (RFC 7641 §3.3.1),
   * so the server replaces its registration instead of adding one.
   * INVALID_ARGUMENT for a token the stream does not hold.
   */
  resend(spec: RequestSpec, token: Uint8Array): void;
  /** Stop delivering; outstanding CONs are cancelled. Idempotent. */
  close(): void;
}

/** Dependencies handed in by the endpoint. */
export interface StreamDeps {
  readonly runtime: Runtime;
  readonly tokenLength: number;
  readonly allocateMid: () => number;
  readonly send: (bytes: Uint8Array, peer: Peer) => void;
  readonly retransmitter: Retransmitter;
  /** Tokens remembered per stream. Default 256. */
  readonly maxTokens?: number;
}

interface Open {
  readonly listener: StreamListener;
  readonly tokens: string[];
  readonly cons: Set<() => void>;
  closed: boolean;
}

/** Every open stream of one endpoint, indexed by peer and token. */
export class ResponseStreams {
  private readonly byToken = new Map<string, Open>();

  constructor(private readonly deps: StreamDeps) {}

  /** Open a stream of requests to `peer`. */
  open(peer: Peer, listener: StreamListener): ResponseStream {
    const s: Open = { listener, tokens: [], cons: new Set(), closed: false };
    const pk = peerKey(peer);
    const maxTokens = this.deps.maxTokens ?? 256;
    return {
      send: (spec) => {
        if (s.closed) throw new CoapfwError('TRANSPORT_CLOSED', 'response stream: closed');
        const token = this.newToken(pk);
        const key = `${pk}|${bytesToHex(token)}`;
        this.byToken.set(key, s);
        s.tokens.push(key);
        if (s.tokens.length > maxTokens) this.byToken.delete(s.tokens.shift()!);
        this.transmit(peer, spec, token, s);
        return token;
      },
      resend: (spec, token) => {
        if (s.closed) throw new CoapfwError('TRANSPORT_CLOSED', 'response stream: closed');
        if (this.byToken.get(`${pk}|${bytesToHex(token)}`) !== s) throw new CoapfwError('INVALID_ARGUMENT', 'response stream: resend with a token this stream does not hold');
        this.transmit(peer, spec, token, s);
      },
      close: () => {
        if (s.closed) return;
        s.closed = true;
        for (const k of s.tokens) this.byToken.delete(k);
        for (const cancel of [...s.cons]) cancel();
      },
    };
  }

  /** Hand `msg` to the stream owning its token; false when none does. */
  deliver(msg: CoapMessage, peer: Peer): boolean {
    const s = this.byToken.get(`${peerKey(peer)}|${bytesToHex(msg.token)}`);
    if (s === undefined || s.closed) return false;
    s.listener.onResponse(msg);
    return true;
  }

  /** Open streams' tokens (bounded by maxTokens per stream). */
  get size(): number {
    return this.byToken.size;
  }

  private transmit(peer: Peer, spec: RequestSpec, token: Uint8Array, s: Open): void {
    const mid = this.deps.allocateMid();
    const confirmable = spec.confirmable ?? true;
    const bytes = encodeMessage({
      type: confirmable ? MessageType.CON : MessageType.NON,
      code: spec.code,
      messageId: mid,
      token,
      options: spec.options ?? [],
      payload: spec.payload ?? new Uint8Array(0),
    });
    if (!confirmable) {
      this.deps.send(bytes, peer);
      return;
    }
    let cancel: (() => void) | undefined;
    const done = (o: ConOutcome): void => {
      if (cancel) s.cons.delete(cancel);
      if (s.closed) return;
      if (o.kind === 'timeout') s.listener.onError?.(new CoapfwError('TIMEOUT', `${peerKey(peer)}: no acknowledgement after retransmissions`, { peer }));
      else if (o.kind === 'reset') s.listener.onError?.(new CoapfwError('RESET', `${peerKey(peer)}: request rejected with RST`, { peer }));
    };
    cancel = this.deps.retransmitter.start(bytes, peer, mid, done);
    s.cons.add(cancel);
  }

  private newToken(pk: string): Uint8Array {
    for (;;) {
      const t = this.deps.runtime.randomBytes(this.deps.tokenLength);
      if (!this.byToken.has(`${pk}|${bytesToHex(t)}`)) return t;
    }
  }
}
