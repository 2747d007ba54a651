/**
 * Client side of the message layer: outstanding requests matched to
 * responses by peer and token (RFC 7252 §5.3.2), NSTART (§4.7) per peer,
 * response time-outs and cancellation.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, MessageType, OptionNumber } from '../codec/numbers.js';
import { EMPTY } from '../codec/bytes.js';
import { encodeMessage } from '../codec/message.js';
import { decodeBlock } from '../codec/block.js';
import { uriPath } from '../codec/options.js';
import { CoapfwError, type CoapfwErrorCode } from '../errors.js';
import { peerKey, type Peer } from '../core/transport.js';
import type { RequestOptions, RequestSpec } from '../core/request.js';
import type { Retransmitter, ConOutcome } from './reliability.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';

interface Pending {
  readonly peer: Peer;
  readonly resolve: (m: CoapMessage) => void;
  readonly reject: (e: Error) => void;
  cancelCon: (() => void) | undefined;
  timer: TimerHandle | undefined;
}

/** Dependencies handed in by the endpoint. */
export interface PendingDeps {
  readonly runtime: Runtime;
  readonly retransmitter: Retransmitter;
  readonly nstart: number;
  readonly tokenLength: number;
  readonly defaultResponseTimeoutMs: number;
  readonly allocateMid: () => number;
  readonly send: (bytes: Uint8Array, peer: Peer) => void;
}


/** Outstanding requests of one endpoint. */
export class PendingRequests {
  private readonly byToken = new Map<string, Pending>();
  private readonly active = new Map<string, number>();
  /** Requests waiting for an NSTART slot, per peer. */
  private readonly queues = new Map<string, Array<{ start: () => void; reject: (e: Error) => void }>>();
  private closed = false;

  constructor(private readonly deps: PendingDeps) {}

  request(peer: Peer, spec: RequestSpec, options: RequestOptions): Promise<CoapMessage> {
    return new Promise<CoapMessage>((resolve, reject) => {
      const signal = options.signal;
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const pk = peerKey(peer);
      let onAbort: (() => void) | undefined;
      const start = (): void => {
        this.startRequest(peer, pk, spec, options, {
          resolve: (m) => {
            if (onAbort) signal?.removeEventListener('abort', onAbort);
            resolve(m);
          },
          reject: (e) => {
            if (onAbort) signal?.removeEventListener('abort', onAbort);
            reject(e);
          },
        }, (cancel) => {
          onAbort = () => cancel(abortError(signal!));
        });
        if (signal && onAbort) signal.addEventListener('abort', onAbort, { once: true });
      };
      if ((this.active.get(pk) ?? 0) < this.deps.nstart) {
        start();
        return;
      }
      const queue = this.queues.get(pk) ?? [];
      this.queues.set(pk, queue);
      const dequeue = (): void => {
        const i = queue.findIndex((q) => q.start === startQueued);
        if (i >= 0) queue.splice(i, 1);
        reject(abortError(signal!));
      };
      const startQueued = (): void => {
        signal?.removeEventListener('abort', dequeue);
        start();
      };
      queue.push({ start: startQueued, reject });
      signal?.addEventListener('abort', dequeue, { once: true });
    });
  }

  ping(peer: Peer, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const mid = this.deps.allocateMid();
      const bytes = encodeMessage({ type: MessageType.CON, code: Code.EMPTY, messageId: mid, token: EMPTY, options: [], payload: EMPTY });
      const cancel = this.deps.retransmitter.start(bytes, peer, mid, (o) => {
        signal?.removeEventListener('abort', cancel);
        if (o.kind === 'reset') resolve();
        else if (o.kind === 'timeout') reject(new CoapfwError('TIMEOUT', `ping ${peerKey(peer)}: no answer`, { peer: plainPeer(peer) }));
        else if (o.kind === 'ack') reject(new CoapfwError('RESPONSE_CODE', `ping ${peerKey(peer)}: answered with ACK, not RST`, { peer: plainPeer(peer) }));
        else reject(signal ? abortError(signal) : new CoapfwError('ABORTED', 'ping cancelled'));
      });
      signal?.addEventListener('abort', cancel, { once: true });
    });
  }

  /** Hand a response to the request waiting for its token; false when none waits. */
  deliver(msg: CoapMessage, peer: Peer): boolean {
    const key = tokenKey(peer, msg.token);
    const p = this.byToken.get(key);
    if (p === undefined) return false;
    this.complete(key, p);
    p.resolve(msg);
    return true;
  }

  /** Close: reject every outstanding and queued request; start nothing more. */
  rejectAll(error: Error): void {
    this.closed = true;
    const queued = [...this.queues.values()].flat();
    this.queues.clear();
    for (const [key, p] of [...this.byToken]) {
      this.complete(key, p);
      p.reject(error);
    }
    for (const q of queued) q.reject(error);
  }

  private startRequest(
    peer: Peer,
    pk: string,
    spec: RequestSpec,
    options: RequestOptions,
    cb: { resolve: (m: CoapMessage) => void; reject: (e: Error) => void },
    setCancel: (cancel: (e: Error) => void) => void,
  ): void {
    const token = this.newToken(peer);
    const key = tokenKey(peer, token);
    const mid = this.deps.allocateMid();
    const confirmable = spec.confirmable ?? true;
    const msg: CoapMessage = {
      type: confirmable ? MessageType.CON : MessageType.NON,
      code: spec.code,
      messageId: mid,
      token,
      options: spec.options ?? [],
      payload: spec.payload ?? EMPTY,
    };
    this.active.set(pk, (this.active.get(pk) ?? 0) + 1);
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(msg);
    } catch (e) {
      this.release(pk);
      cb.reject(e as Error);
      return;
    }
    const p: Pending = { peer, resolve: cb.resolve, reject: cb.reject, cancelCon: undefined, timer: undefined };
    this.byToken.set(key, p);
    const fail = (e: Error): void => {
      if (this.byToken.get(key) !== p) return;
      this.complete(key, p);
      p.reject(e);
    };
    setCancel(fail);
    const responseTimeout = options.responseTimeoutMs ?? this.deps.defaultResponseTimeoutMs;
    const armResponseTimer = (): void => {
      p.timer = this.deps.runtime.setTimer(responseTimeout, () =>
        fail(requestError('TIMEOUT', `${peerKey(peer)}: no response within ${Math.round(responseTimeout)} ms`, peer, msg)),
      );
    };
    if (!confirmable) {
      armResponseTimer();
      this.deps.send(bytes, peer);
      return;
    }
    p.cancelCon = this.deps.retransmitter.start(bytes, peer, mid, (o: ConOutcome) => {
      p.cancelCon = undefined;
      if (o.kind === 'timeout') {
        fail(requestError('TIMEOUT', `${peerKey(peer)}: no acknowledgement after retransmissions`, peer, msg));
      } else if (o.kind === 'reset') {
        fail(requestError('RESET', `${peerKey(peer)}: request rejected with RST`, peer, msg));
      } else if (o.kind === 'ack') {
        if (this.byToken.get(key) === p) armResponseTimer(); // empty ACK: the separate response follows (§5.2.2)
      } else {
        fail(requestError('TRANSPORT_CLOSED', `${peerKey(peer)}: endpoint closed`, peer, msg));
      }
    });
  }

  private complete(key: string, p: Pending): void {
    this.byToken.delete(key);
    if (p.timer !== undefined) this.deps.runtime.clearTimer(p.timer);
    if (p.cancelCon) {
      const c = p.cancelCon;
      p.cancelCon = undefined;
      c();
    }
    this.release(peerKey(p.peer));
  }

  private release(pk: string): void {
    const n = (this.active.get(pk) ?? 1) - 1;
    if (n <= 0) this.active.delete(pk);
    else this.active.set(pk, n);
    if (this.closed) return;
    const queue = this.queues.get(pk);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.queues.delete(pk);
    next?.start();
  }

  private newToken(peer: Peer): Uint8Array {
    for (;;) {
      const t = this.deps.runtime.randomBytes(this.deps.tokenLength);
      if (!this.byToken.has(tokenKey(peer, t))) return t;
    }
  }
}

function tokenKey(peer: Peer, token: Uint8Array): string {
  return `${peerKey(peer)}|${bytesToHex(token)}`;
}

/**
 * An error about one request, carrying what a program acts on: the peer, the
 * Uri-Path and, for a block-wise request, the block number (RFC 7959 §2.2).
 */
function requestError(code: CoapfwErrorCode, message: string, peer: Peer, msg: CoapMessage): CoapfwError {
  const blockOption = msg.options.find((o) => o.number === OptionNumber.BLOCK2 || o.number === OptionNumber.BLOCK1);
  const path = unlessMalformed(() => `/${uriPath(msg).join('/')}`);
  const block = blockOption && unlessMalformed(() => decodeBlock(blockOption.value).num);
  return new CoapfwError(code, message, { peer: plainPeer(peer), path, block });
}

/**
 * A caller may send a Uri-Path that is not UTF-8 or a Block value we cannot
 * read: such a field names nothing we can report, so the error leaves it out.
 */
function unlessMalformed<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/** The address and port alone: a transport's peer object may carry more. */
function plainPeer(peer: Peer): Peer {
  return { address: peer.address, port: peer.port };
}

function abortError(signal: AbortSignal): CoapfwError {
  return new CoapfwError('ABORTED', 'request aborted', { cause: signal.reason });
}
