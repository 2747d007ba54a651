/**
 * The Q-Block2 client's types (RFC 9177 §4.4): what the client needs from
 * the message layer, its options, counters and outcome, and the contract
 * between the client (qblock2-client.ts) and its two pacing modes
 * (qblock2-rfc.ts, qblock2-window.ts).
 */
import type { CoapMessage, CoapOption } from '../codec/message.js';
import type { RequestSpec } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import type { CongestionOptions } from '../messaging/congestion.js';
import type { BlockBitmap } from './bitmap.js';
import type { BodyShape, QBlock2Payload } from './qblock2-check.js';
import type { MissingRequestLimits } from './qblock2-options.js';
import type { QBlockParams } from './qblock2-params.js';
/** What the client needs from the message layer: send a request whose every response comes back to {@link QBlock2Client.onResponse}. */
export interface QBlock2Link {
  /** Send `spec` with a fresh token; returns the token (used to repeat a request with an RFC 9175 Echo value). */
  send(spec: RequestSpec): Uint8Array | void;
}

/** How a Q-Block2 fetch ended. */
export type QBlock2Outcome =
  | { readonly kind: 'complete'; readonly size: number; readonly etag: Uint8Array | undefined; readonly szx: number; readonly stats: QBlock2ClientStats }
  /** The server does not do Q-Block2 here: fetch with Block2. `response` is what it answered. */
  | { readonly kind: 'fallback'; readonly reason: 'bad-option' | 'no-qblock2'; readonly response: CoapMessage };

/** Counters. */
export interface QBlock2ClientStats {
  requests: number;
  blocks: number;
  duplicates: number;
  rerequested: number;
  continues: number;
  /** Blocks dropped unrecorded because they lay `maxAhead` or more past the lowest missing one (asked for again later). */
  beyond?: number;
  /** 'paced': blocks declared lost, loss episodes (window cuts), probe timeouts; final window and smoothed RTT. */
  lost?: number;
  losses?: number;
  timeouts?: number;
  window?: number;
  srttMs?: number;
}

/** Options of {@link QBlock2Client}. */
export interface QBlock2ClientOptions {
  readonly runtime: Runtime;
  readonly link: QBlock2Link;
  /** Options naming the resource (Uri-Path, Uri-Query, ...). */
  readonly options: readonly CoapOption[];
  /** Block size exponent asked for (the server may pick smaller). Default 6. */
  readonly szx?: number;
  /** Blocks already held (a resume), numbered at `szx`: they are not asked for again. */
  readonly held?: BlockBitmap;
  /** ETag the body must have (resume); another one fails with ETAG_MISMATCH. */
  readonly etag?: Uint8Array;
  /** Refuse a larger body (TOO_LARGE). Default 16 MiB. */
  readonly maxSize?: number;
  readonly params?: Partial<QBlockParams>;
  readonly mode?: 'rfc' | 'paced';
  /** Congestion controller settings for 'paced'. */
  readonly congestion?: CongestionOptions;
  /**
   * 'paced': never ask for a block this far or further past the lowest
   * missing one, which bounds what a receiver writing in order must buffer
   * (a stream) or erase ahead (flash). Default: no bound.
   */
  readonly maxAhead?: number;
  readonly limits?: MissingRequestLimits;
  /** 'rfc': send the body request as CON (default; §4.1 REQUIRES it to learn whether the server supports Q-Block2). */
  readonly confirmableFirst?: boolean;
  /** Each new block, in arrival order; a returned promise is awaited before completion. */
  readonly onBlock: (block: QBlock2Payload) => void | Promise<void>;
}

/** What a pacing mode gets from the client. */
export interface PacerHost {
  readonly o: QBlock2ClientOptions;
  readonly params: QBlockParams;
  readonly shape: BodyShape;
  readonly bitmap: BlockBitmap;
  readonly stats: QBlock2ClientStats;
  /** Blocks handed to `onBlock` whose promise has not settled yet (a sink behind: ask for no new ones past `maxAhead`). */
  readonly unsunk: number;
  send(spec: RequestSpec): void;
  armTimer(ms: number): void;
}

/** A pacing mode: what to ask for, and when. */
export interface Pacer {
  /** The body's shape is known; `asked` blocks were asked for by the first request and not yet received. */
  begin(asked: readonly number[]): void;
  /** A new block arrived (not a duplicate) and the body is not complete. */
  onBlock(num: number): void;
  /** Any payload arrived (new or duplicate). */
  onPayload(num: number): void;
  /** The timer armed through the host fired. */
  onTimer(): void;
  /** A block's sink promise settled (`unsunk` went down): the mode may ask for more. */
  onSunk?(): void;
  /** Add what the mode knows to the client's counters. */
  report?(stats: QBlock2ClientStats): void;
}
