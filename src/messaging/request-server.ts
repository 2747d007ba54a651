/**
 * The server role of a {@link CoapEndpoint} (RFC 7252 §4.5, §5.2): duplicate
 * detection answering a duplicate CON with the same response, piggybacked
 * responses, an empty ACK and a separate CON response when the handler is
 * slow (§5.2.2), a cap on requests being handled at once. The endpoint owns
 * the socket, message IDs and retransmission; this decides what to answer.
 */
import { EMPTY } from '../codec/bytes.js';
import { encodeMessage, type CoapMessage, type CoapOption } from '../codec/message.js';
import { Code, MessageType, OptionNumber } from '../codec/numbers.js';
import { encodeUint } from '../codec/options.js';
import { peerKey, type Peer } from '../core/transport.js';
import type { Runtime } from '../core/runtime.js';
import { publish } from '../diagnostics.js';
import type { DedupCache } from './dedup.js';
import type { CoapEndpoint } from './endpoint.js';
import type { EndpointStats, RequestHandler, ResponseSpec } from './endpoint-types.js';
import { noResponseSuppresses } from './no-response.js';

/** What the server role uses of its endpoint. */
export interface ServerIo {
  readonly endpoint: CoapEndpoint;
  readonly runtime: Runtime;
  readonly dedup: DedupCache;
  readonly stats: EndpointStats;
  readonly responseCodes: Uint32Array;
  readonly requestCodes: Uint32Array;
  readonly maxConcurrent: number;
  readonly separateAfterMs: number;
  isClosed(): boolean;
  sendRaw(bytes: Uint8Array, peer: Peer): void;
  sendMessage(msg: CoapMessage, peer: Peer): Uint8Array;
  allocateMid(): number;
  /** Send a CON (a separate response) and retransmit it within the peer's budget after `spent` bytes of a `requestBytes` request. */
  sendConfirmable(bytes: Uint8Array, peer: Peer, mid: number, requestBytes: number, spent: number): void;
}

/** Answers the requests an endpoint receives with its installed handler. */
export class RequestServer {
  handler: RequestHandler | undefined;
  private inflight = 0;

  constructor(private readonly io: ServerIo) {}

  onRequest(msg: CoapMessage, peer: Peer, size: number): void {
    if (msg.type === MessageType.ACK || msg.type === MessageType.RST) return; // not a valid request carrier
    const io = this.io;
    const key = cachedPeerKey(peer);
    const now = io.runtime.now();
    const seen = io.dedup.get(key, msg.messageId, now);
    if (seen !== undefined) {
      io.stats.duplicates++;
      // §4.5: a duplicate CON gets the same response (or, a GET whose response was let go, is processed
      // again: the rule "MAY be relaxed" for idempotent requests); a NON duplicate is ignored.
      if (msg.type !== MessageType.CON || !seen.reprocess) {
        if (msg.type === MessageType.CON && seen.response !== undefined) io.sendRaw(seen.response, peer);
        return;
      }
      seen.reprocess = false;
    }
    const entry = seen ?? io.dedup.add(key, msg.messageId, now);
    io.requestCodes[msg.code & 0x1f]!++;
    if (this.handler === undefined || this.inflight >= io.maxConcurrent) {
      io.stats.overloaded++;
      // RFC 7252 §5.9.3.4: Max-Age says when to try again; a second, not the 60 s default.
      entry.response = this.respond(msg, peer, { code: Code.SERVICE_UNAVAILABLE, options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(1) }] }, false, size);
      return;
    }
    let result: ResponseSpec | undefined | Promise<ResponseSpec | undefined>;
    try {
      result = this.handler({ message: msg, peer, endpoint: io.endpoint, size });
    } catch (e) {
      handlerError(e, peer, 'handler threw');
      result = { code: Code.INTERNAL_SERVER_ERROR };
    }
    if (!(result instanceof Promise)) {
      io.dedup.keep(entry, this.respond(msg, peer, result, false, size), replayable(msg));
      return;
    }
    this.inflight++;
    let separate = false;
    const timer =
      msg.type === MessageType.CON
        ? io.runtime.setTimer(io.separateAfterMs, () => {
            separate = true;
            entry.response = io.sendMessage(emptyAck(msg.messageId), peer);
          })
        : undefined;
    result
      .catch((e: unknown): ResponseSpec => {
        handlerError(e, peer, 'handler rejected');
        return { code: Code.INTERNAL_SERVER_ERROR };
      })
      .then((spec) => {
        this.inflight--;
        if (timer !== undefined) io.runtime.clearTimer(timer);
        const bytes = this.respond(msg, peer, spec, separate, size);
        if (!separate) io.dedup.keep(entry, bytes, replayable(msg));
      });
  }

  /**
   * Build and send the response to `req`; returns the bytes to replay for
   * duplicates. A handler result that cannot be encoded becomes a 5.00.
   */
  private respond(req: CoapMessage, peer: Peer, spec: ResponseSpec | undefined, separate: boolean, size: number): Uint8Array | undefined {
    if (this.io.isClosed()) return undefined;
    try {
      return this.sendResponse(req, peer, spec, separate, size);
    } catch (e) {
      handlerError(e, peer, 'response could not be encoded');
      return this.sendResponse(req, peer, { code: Code.INTERNAL_SERVER_ERROR }, separate, size);
    }
  }

  private sendResponse(req: CoapMessage, peer: Peer, answer: ResponseSpec | undefined, separate: boolean, size: number): Uint8Array | undefined {
    const io = this.io;
    // RFC 7967: a response of a class the client said it does not want is not sent (a CON still gets its empty ACK).
    const spec = answer !== undefined && noResponseSuppresses(req, answer.code) ? undefined : answer;
    if (spec === undefined) {
      return req.type === MessageType.CON && !separate ? io.sendMessage(emptyAck(req.messageId), peer) : undefined;
    }
    io.responseCodes[spec.code & 0xff]!++;
    // Built field by field, not spread from a shared base: this runs once per block served.
    const options = spec.options ?? NO_OPTIONS;
    const payload = spec.payload ?? EMPTY;
    if (req.type === MessageType.CON && !separate) {
      return io.sendMessage({ type: MessageType.ACK, code: spec.code, messageId: req.messageId, token: req.token, options, payload }, peer);
    }
    if (separate) {
      // §5.2.2: the separate response is itself a CON, retransmitted until ACKed;
      // to an unverified address only as the budget allows after the empty ACK and its first copy.
      const mid = io.allocateMid();
      const bytes = encodeMessage({ type: MessageType.CON, code: spec.code, messageId: mid, token: req.token, options, payload });
      io.sendConfirmable(bytes, peer, mid, size, EMPTY_ACK_SIZE + bytes.length);
      return undefined;
    }
    io.sendMessage({ type: MessageType.NON, code: spec.code, messageId: io.allocateMid(), token: req.token, options, payload }, peer);
    return undefined;
  }
}

/**
 * A request that may be processed again when its response was let go: a
 * plain GET (safe and idempotent, RFC 7252 §5.8.1), not one that registers
 * an observer (RFC 7641) or starts a Q-Block2 burst (RFC 9177), whose
 * second processing would do more than answer again.
 */
function replayable(msg: CoapMessage): boolean {
  if (msg.code !== Code.GET) return false;
  for (const o of msg.options) if (o.number === OptionNumber.OBSERVE || o.number === OptionNumber.Q_BLOCK2) return false;
  return true;
}

/** A handler's failure that became a 5.00: said on the coapfw:error channel, never swallowed silently. */
function handlerError(error: unknown, peer: Peer, where: string): void {
  publish('error', () => ({ where: `endpoint: ${where}`, error, peer: peerKey(peer) }));
}

const NO_OPTIONS: readonly CoapOption[] = [];

// Transports that hand out one Peer object per remote address (udp.ts does) make this a lookup, not a string built per datagram.
const peerKeys = new WeakMap<Peer, string>();

function cachedPeerKey(peer: Peer): string {
  let k = peerKeys.get(peer);
  if (k === undefined) {
    k = peerKey(peer);
    peerKeys.set(peer, k);
  }
  return k;
}

/** An empty ACK (or ping, or RST) is its 4-byte header. */
export const EMPTY_ACK_SIZE = 4;

/** An empty ACK for message ID `mid` (§4.2). */
export function emptyAck(mid: number): CoapMessage {
  return { type: MessageType.ACK, code: Code.EMPTY, messageId: mid, token: EMPTY, options: [], payload: EMPTY };
}
