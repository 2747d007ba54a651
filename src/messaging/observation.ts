/**
 * The client side of one Observe registration (RFC 7641), kept alive the way
 * a device behind a NAT must: a GET with Observe 0, every notification handed
 * on in order, and a re-registration with the same token (§3.3.1: the server
 * replaces its registration) whenever nothing came for the refresh interval
 * (the server's `poll`, jittered so a fleet does not come back in step). A
 * server that restarted has forgotten us; its silence, a RST or an error
 * code is reported as lost, and the owner decides what follows (register
 * again with back-off). Only monotonic timers of the injected Runtime.
 */
import type { CoapMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption, pathOptions, uintOption } from '../codec/options.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import type { CoapfwError } from '../errors.js';
import type { RequestSpec } from '../core/request.js';
import type { ResponseStream, StreamListener } from './response-stream.js';

/** Why an observation ended. */
export type ObserveLoss =
  /** The server answered an error code (4.04: it does not know the resource or the device). */
  | { readonly kind: 'refused'; readonly code: number; readonly maxAge: number | undefined }
  /** No acknowledgement (TIMEOUT) or a RST (RESET) for our request. */
  | { readonly kind: 'unreachable'; readonly error: CoapfwError };

/** Options of {@link Observation}. */
export interface ObservationOptions {
  readonly runtime: Runtime;
  /** Opens a stream of requests to the server (`CoapEndpoint.openStream` bound to its peer). */
  readonly openStream: (listener: StreamListener) => ResponseStream;
  readonly path: string;
  /** The registration GET (Observe 0) when more than `path` names the resource (a proxy's Uri-Host, Uri-Query). Default a GET of `path`. */
  readonly registration?: RequestSpec;
  /** Re-register when no notification came for this long; the wait is drawn from [1, 1.25] times it. */
  readonly refreshMs: number;
  /** A fresh representation (2.05), in order. */
  readonly onValue: (msg: CoapMessage) => void;
  /** The observation ended (the instance is closed). */
  readonly onLost: (loss: ObserveLoss) => void;
}

/** RFC 7641 §3.4: notifications more than 128 s apart are in order whatever their numbers say. */
const REORDER_WINDOW_MS = 128_000;
const HALF = 1 << 23;

/** One kept-alive Observe registration. */
export class Observation {
  private stream: ResponseStream | undefined;
  private token: Uint8Array | undefined;
  private timer: TimerHandle | undefined;
  private last: { readonly seq: number; readonly at: number } | undefined;
  private closed = false;
  /** Registrations sent (the first and every refresh). */
  registrations = 0;
  /** Notifications taken (fresh ones). */
  notifications = 0;

  constructor(private readonly o: ObservationOptions) {}

  /** Send the registration. */
  start(): void {
    const listener: StreamListener = { onResponse: (m) => this.onResponse(m), onError: (e) => this.lose({ kind: 'unreachable', error: e }) };
    this.stream = this.o.openStream(listener);
    this.token = this.stream.send(this.o.registration ?? observeRequest(this.o.path));
    this.registrations++;
    this.arm();
  }

  /** Re-register now (same token), e.g. after a report showed the server is back. */
  refresh(): void {
    if (this.closed || this.stream === undefined || this.token === undefined) return;
    // A re-registration starts a new sequence of notifications (§3.4 compares within one).
    this.last = undefined;
    this.stream.resend(this.o.registration ?? observeRequest(this.o.path), this.token);
    this.registrations++;
    this.arm();
  }

  /** Stop: notifications that still come are answered with RST, which ends the server's registration (§3.6). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.o.runtime.clearTimer(this.timer);
    this.stream?.close();
  }

  private arm(): void {
    this.o.runtime.clearTimer(this.timer);
    const wait = this.o.refreshMs * (1 + 0.25 * this.o.runtime.random());
    this.timer = this.o.runtime.setTimer(wait, () => this.refresh());
  }

  private onResponse(msg: CoapMessage): void {
    if (this.closed) return;
    if (msg.code >> 5 !== 2) return this.lose({ kind: 'refused', code: msg.code, maxAge: maxAgeOf(msg) });
    if (msg.code !== Code.CONTENT) return;
    const raw = getOption(msg, OptionNumber.OBSERVE);
    if (raw !== undefined && !this.fresh(raw)) return;
    // No Observe option: the server did not register us (§3.2, e.g. its table is full); the refresh polls.
    this.notifications++;
    this.arm();
    this.o.onValue(msg);
  }

  /** §3.4: is this notification newer than the last one taken? */
  private fresh(raw: Uint8Array): boolean {
    let seq: number;
    try {
      seq = decodeUint(raw);
    } catch {
      return false;
    }
    const now = this.o.runtime.now();
    const prev = this.last;
    const newer = prev === undefined || (prev.seq < seq && seq - prev.seq < HALF) || (prev.seq > seq && prev.seq - seq > HALF) || now > prev.at + REORDER_WINDOW_MS;
    if (newer) this.last = { seq, at: now };
    return newer;
  }

  private lose(loss: ObserveLoss): void {
    if (this.closed) return;
    this.close();
    this.o.onLost(loss);
  }
}

/** Max-Age of an error answer (RFC 7252 §5.10.5: "try again after"), when it carries one. */
function maxAgeOf(msg: CoapMessage): number | undefined {
  const raw = getOption(msg, OptionNumber.MAX_AGE);
  if (raw === undefined) return undefined;
  try {
    return decodeUint(raw);
  } catch {
    return undefined;
  }
}

/** GET `path` with Observe 0: a registration (RFC 7641 §3.1). */
function observeRequest(path: string): RequestSpec {
  return { code: Code.GET, options: [uintOption(OptionNumber.OBSERVE, 0), ...pathOptions(path)] };
}
