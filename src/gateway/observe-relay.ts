/**
 * Observe through the gateway (RFC 7641 §5, RFC 7252 §5.7): a device that
 * registers with `GET + Observe: 0` on a resource of the upstream (its
 * command resource `/d/<id>/c`, a manifest `/m/<class>`) is registered here
 * ({@link ObserveRegistry}, bounded in all and per address, confirmable
 * notifications, an observer that answers RST or nothing removed), and the
 * gateway registers once upstream per resource, however many devices
 * observe it, and fans each notification out (§5: an intermediary may
 * register itself and serve its observers from the notifications).
 *
 * Upstream, one {@link Observation} per resource, at most `maxUpstream` at
 * once (a registration beyond that is answered like a plain GET, without
 * Observe, so the device knows it is not registered, §3.1), re-registered
 * when no notification came for `refreshMs`, and let go `lingerMs` after its
 * last observer went (the next notification is answered RST, §3.6). A
 * notification that fails the gateway's check (an envelope that fails
 * verification) is not passed on; one that the upstream sends block-wise
 * (Block2 with M set, RFC 7959 §2.6) cannot be relayed in one message and
 * ends the observations with 5.02, as does an upstream that ends the
 * observation or goes away (§4.2: a non-2.xx notification ends it).
 */
import { equalBytes } from '@noble/curves/utils.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { CoapMessage } from '../codec/message.js';
import { decodeBlock } from '../codec/block.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption, uintOption } from '../codec/options.js';
import type { CoapClient } from '../client/open.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { Observation, type ObserveLoss } from '../messaging/observation.js';
import { CoapfwError } from '../errors.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import { ObserveRegistry, type ObserveOptions } from '../server/observe.js';
import { errorResponse } from '../server/responses.js';
import type { Resource } from '../server/router.js';
import { forwardAsIs, forwardedOptions, relayed, resourceKey, trackedStream, unsafeUnknown, upstreamFailure, type RelayContext, type Target } from './relay.js';

/** Limits and timing of the relay; every one has a default. */
export interface ObserveRelaySettings extends Pick<ObserveOptions, 'maxObservers' | 'maxObserversPerAddress' | 'confirmIntervalMs'> {
  /** Resources observed upstream at once. Default 64. */
  readonly maxUpstream?: number;
  /** Re-register upstream when no notification came for this long. Default 300,000 ms. */
  readonly refreshMs?: number;
  /** Keep an upstream registration this long after its last observer went. Default 5,000 ms. */
  readonly lingerMs?: number;
}

/** Options of {@link ObserveRelay}. */
export interface ObserveRelayOptions extends ObserveRelaySettings {
  readonly relay: RelayContext;
  readonly runtime: Runtime;
}

/** Counters. */
export interface ObserveRelayStats {
  /** Upstream registrations made / open now. */
  upstream: number;
  open: number;
  /** Notifications from upstream taken, and passed on to observers (one per observer). */
  notifications: number;
  fannedOut: number;
  /** Notifications the check refused (not passed on). */
  refused: number;
  /** Registrations answered without Observe: `maxUpstream` reached. */
  overflow: number;
  /** Upstream observations that ended (error, gone, too large). */
  lost: number;
}

/** Checks a notification's payload before any device gets it (throws to refuse). */
export type NotificationCheck = (payload: Uint8Array) => Promise<void>;

interface Upstream {
  readonly key: string;
  readonly observation: Observation;
  latest: CoapMessage | undefined;
  /** How the observation ended, for registrations still waiting for the first answer. */
  failure: ResponseSpec | undefined;
  /** Settles with the first answer (or the loss). */
  readonly first: Promise<void>;
  settleFirst: () => void;
  /** Notifications are checked one at a time, in order. */
  chain: Promise<void>;
  linger: TimerHandle | undefined;
  release: () => void;
}

/** The gateway's Observe relay. */
export class ObserveRelay {
  readonly stats: ObserveRelayStats = { upstream: 0, open: 0, notifications: 0, fannedOut: 0, refused: 0, overflow: 0, lost: 0 };
  readonly registry: ObserveRegistry;
  private readonly upstreams = new Map<string, Upstream>();
  private readonly maxUpstream: number;
  private closed = false;

  constructor(private readonly o: ObserveRelayOptions) {
    this.maxUpstream = o.maxUpstream ?? 64;
    if (!Number.isInteger(this.maxUpstream) || this.maxUpstream < 0) throw new CoapfwError('INVALID_ARGUMENT', `gateway observe: maxUpstream must be an integer >= 0, got ${this.maxUpstream}`);
    this.registry = new ObserveRegistry({
      maxObservers: o.maxObservers,
      maxObserversPerAddress: o.maxObserversPerAddress,
      confirmIntervalMs: o.confirmIntervalMs,
      runtime: o.runtime,
      onRemoved: (key, left) => {
        if (left === 0) this.lingerThenDrop(key);
      },
    });
  }

  /** Whether `msg` carries Observe (a registration or a deregistration): {@link ObserveRelay.handle} is for it. */
  static wants(msg: CoapMessage): boolean {
    return msg.code === Code.GET && getOption(msg, OptionNumber.OBSERVE) !== undefined;
  }

  /**
   * Answer a GET with Observe for `t` (see {@link ObserveRelay.wants}):
   * registered here and served from the upstream registration, or, when no
   * more resources can be observed upstream, forwarded as a plain GET.
   */
  handle(req: CoapRequest, t: Target, check?: NotificationCheck): Promise<ResponseSpec | undefined> {
    const bad = unsafeUnknown(req.message);
    if (bad !== undefined) return Promise.resolve(bad);
    const key = keyOf(req.message, t);
    const registering = observeValue(req.message) === 0;
    if (registering && !this.upstreams.has(key) && (this.upstreams.size >= this.maxUpstream || this.closed)) {
      this.stats.overflow++;
      return forwardAsIs(this.o.relay, t, req.message); // no Observe in the answer: not registered (§3.1)
    }
    const resource: Resource = {
      methods: new Set([Code.GET]),
      handle: (r) => (observeValue(r.message) === 0 ? this.current(key, t, r.message, check) : forwardAsIs(this.o.relay, t, r.message)),
    };
    return Promise.resolve(this.registry.wrap(key, resource).handle(req));
  }

  /** Let go of every upstream registration and stop the confirmations. */
  close(): void {
    this.closed = true;
    for (const key of [...this.upstreams.keys()]) this.drop(key);
    this.registry.close();
  }

  /** The latest representation from the upstream registration of `key` (made now if there is none). */
  private async current(key: string, t: Target, msg: CoapMessage, check: NotificationCheck | undefined): Promise<ResponseSpec> {
    let up = this.upstreams.get(key);
    if (up === undefined) {
      if (this.closed) return errorResponse(Code.SERVICE_UNAVAILABLE, 'gateway: closing');
      // Filled meanwhile (while this device's address was being checked): try again shortly.
      if (this.upstreams.size >= this.maxUpstream) return { ...errorResponse(Code.SERVICE_UNAVAILABLE, 'gateway: too many resources observed upstream'), options: [uintOption(OptionNumber.MAX_AGE, 5)] };
      up = this.open(key, t, msg, check);
    }
    if (up.linger !== undefined) this.o.runtime.clearTimer(up.linger);
    up.linger = undefined;
    await this.firstAnswer(up);
    if (up.failure !== undefined) return up.failure;
    if (up.latest === undefined) return errorResponse(Code.GATEWAY_TIMEOUT, `${t.origin}: no answer in time`);
    return relayed(up.latest);
  }

  private firstAnswer(up: Upstream): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.o.runtime.setTimer(this.o.relay.responseTimeoutMs ?? 10_000, resolve);
      void up.first.then(() => {
        this.o.runtime.clearTimer(timer);
        resolve();
      });
    });
  }

  private open(key: string, t: Target, msg: CoapMessage, check: NotificationCheck | undefined): Upstream {
    const relay = this.o.relay;
    const mine = t.origin === relay.upstreamOrigin;
    let settleFirst!: () => void;
    const first = new Promise<void>((r) => (settleFirst = r));
    let client: CoapClient | undefined;
    let up!: Upstream;
    const observation = new Observation({
      runtime: this.o.runtime,
      path: `/${t.uri.path.join('/')}`,
      registration: { code: Code.GET, options: [uintOption(OptionNumber.OBSERVE, 0), ...forwardedOptions(msg, t)] },
      refreshMs: this.o.refreshMs ?? 300_000,
      openStream: (listener) => trackedStream(relay, t, client!, listener),
      onValue: (m) => this.onValue(up, m, check),
      onLost: (loss) => this.onLost(up, loss, t),
    });
    up = { key, observation, latest: undefined, failure: undefined, first, settleFirst, chain: Promise.resolve(), linger: undefined, release: () => undefined };
    this.upstreams.set(key, up);
    this.stats.upstream++;
    this.stats.open = this.upstreams.size;
    // The client stays open (busy in the pool, never closed as idle) while the observation lives.
    relay.pool
      .with(t.origin, (c) =>
        new Promise<void>((release) => {
          up.release = release;
          if (this.upstreams.get(key) !== up) return release(); // dropped before the client opened
          client = c;
          observation.start();
        }),
      )
      .catch((e: unknown) => {
        if (mine) relay.uplink.failed(e);
        this.onLost(up, { kind: 'unreachable', error: e instanceof CoapfwError ? e : new CoapfwError('IO_ERROR', String(e), { cause: e }) }, t);
      });
    return up;
  }

  /** A notification (or the first answer): checked, then passed on to every observer. */
  private onValue(up: Upstream, m: CoapMessage, check: NotificationCheck | undefined): void {
    this.stats.notifications++;
    up.chain = up.chain.then(async () => {
      if (this.upstreams.get(up.key) !== up) return;
      const block = getOption(m, OptionNumber.BLOCK2);
      if (block !== undefined && decodeBlock(block).more) {
        this.end(up, errorResponse(Code.BAD_GATEWAY, 'the upstream notifies block-wise; the gateway relays one-message notifications only'));
        return;
      }
      if (check !== undefined) {
        try {
          await check(m.payload);
        } catch (e) {
          this.stats.refused++; // the observers keep the last representation that passed
          if (up.latest === undefined) this.end(up, errorResponse(Code.BAD_GATEWAY, `refused: ${(e as Error).message}`));
          return;
        }
      }
      const firstValue = up.latest === undefined;
      // The answer to our periodic re-registration, unchanged: nothing new for the observers.
      if (up.latest !== undefined && sameRepresentation(up.latest, m)) return void (up.latest = m);
      up.latest = m;
      up.settleFirst();
      // Until the first value every observer is still waiting for its registration's response: that carries it.
      if (firstValue) return;
      this.stats.fannedOut += this.registry.countOf(up.key);
      const resource: Resource = { methods: new Set([Code.GET]), handle: () => relayed(m) };
      this.registry.changed(up.key, resource);
    });
  }

  private onLost(up: Upstream, loss: ObserveLoss, t: Target): void {
    if (this.upstreams.get(up.key) !== up) return;
    const spec =
      loss.kind === 'refused'
        ? { ...errorResponse(loss.code >> 5 === 4 ? loss.code : Code.BAD_GATEWAY, `${t.origin}: the upstream ended the observation`), options: [] }
        : upstreamFailure(loss.error, t);
    this.end(up, spec);
  }

  /** End the observations of `up` with `spec` and let go upstream. */
  private end(up: Upstream, spec: ResponseSpec): void {
    this.stats.lost++;
    up.failure = spec;
    this.drop(up.key);
    // Before the first answer every observer is still waiting for its registration's response: that says it.
    this.registry.end(up.key, up.latest !== undefined ? spec : undefined);
  }

  /** The last observer of `key` went: let go upstream unless one comes back within `lingerMs`. */
  private lingerThenDrop(key: string): void {
    const up = this.upstreams.get(key);
    if (up === undefined || up.linger !== undefined) return;
    up.linger = this.o.runtime.setTimer(this.o.lingerMs ?? 5000, () => {
      up.linger = undefined;
      if (this.registry.countOf(key) === 0) this.drop(key);
    });
  }

  private drop(key: string): void {
    const up = this.upstreams.get(key);
    if (up === undefined) return;
    this.upstreams.delete(key);
    this.stats.open = this.upstreams.size;
    if (up.linger !== undefined) this.o.runtime.clearTimer(up.linger);
    up.observation.close(); // the next notification is answered RST (§3.6)
    up.release();
    up.failure ??= errorResponse(Code.SERVICE_UNAVAILABLE, 'gateway: the observation ended');
    up.settleFirst(); // a registration still waiting for the first answer gets the failure
  }
}

/** One upstream registration per origin, path, query and Accept. */
function keyOf(msg: CoapMessage, t: Target): string {
  return resourceKey(t, getOption(msg, OptionNumber.ACCEPT));
}

/** The Observe value of a request (0 register, 1 deregister), undefined when absent or malformed. */
function observeValue(msg: CoapMessage): number | undefined {
  const raw = getOption(msg, OptionNumber.OBSERVE);
  if (raw === undefined) return undefined;
  try {
    return decodeUint(raw);
  } catch {
    return undefined;
  }
}

/** Same code, options (Observe aside) and payload. */
function sameRepresentation(a: CoapMessage, b: CoapMessage): boolean {
  const opts = (m: CoapMessage): string => m.options.filter((o) => o.number !== OptionNumber.OBSERVE).map((o) => `${o.number}:${bytesToHex(o.value)}`).join(',');
  return a.code === b.code && equalBytes(a.payload, b.payload) && opts(a) === opts(b);
}
