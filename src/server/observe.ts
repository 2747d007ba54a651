/**
 * Observe (RFC 7641) for server resources: a device registers with
 * `GET + Observe: 0` on, say, its manifest, and is told when a new one is
 * published instead of polling.
 *
 * The table cannot be filled or held by a few addresses: registrations are
 * bounded in all and per peer address; when a bound is reached the oldest
 * registration of the address holding the most goes, so a new device is
 * never refused and one address cannot push out everybody else. Every
 * notification is confirmable, and an observer that answers with RST or
 * not at all is removed (§4.5); one that is not notified for
 * `confirmIntervalMs` (24 h, §4.5) gets the current state as a confirmable
 * notification, so registrations of vanished clients expire even on
 * resources that never change.
 *
 * A registration from an address that has not shown it receives at it is
 * held until a CoAP ping is answered (RFC 9175 §2.4; CoapEndpoint.verify),
 * so a spoofed registration draws no response and no notifications beyond
 * the amplification budget of its request.
 */
import { publish } from '../diagnostics.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { encodeMessage, type CoapMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { decodeUint, encodeUint, getOption } from '../codec/options.js';
import { CoapfwError } from '../errors.js';
import type { CoapEndpoint, CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { systemRuntime } from '../transport/runtime.js';
import { peerKey, type Peer } from '../core/transport.js';
import { errorResponse } from './responses.js';
import type { Resource } from './router.js';

interface Observer {
  readonly key: string;
  readonly id: string;
  readonly endpoint: CoapEndpoint;
  readonly peer: Peer;
  readonly request: CoapMessage;
  /** Bytes of the registration request: the amplification budget of its notifications. */
  readonly requestBytes: number;
  /** The latest representation, re-sent as the periodic confirmable notification. */
  resource: Resource;
  /** A confirmable notification is in flight. */
  busy: boolean;
  /** The latest representation changed while busy: send this one when the in-flight one completes. */
  pending: Resource | undefined;
  /** The periodic confirmable notification. */
  timer: TimerHandle | undefined;
}

/** Registry settings; every limit has a safe default. */
export interface ObserveOptions {
  /** Registrations in all, over every resource. Default 1000. */
  readonly maxObservers?: number;
  /** Registrations per peer address (any port, any token). Default 32. */
  readonly maxObserversPerAddress?: number;
  /**
   * An observer not sent a notification for this long gets the current state
   * as a confirmable one; it is removed when that goes unacknowledged.
   * Default 24 h (RFC 7641 §4.5).
   */
  readonly confirmIntervalMs?: number;
  /** Clock for the periodic confirmation. Default the system's. */
  readonly runtime?: Runtime;
  /** Told after a registration of `key` went (any reason), with how many are left there (a relay lets go upstream at 0). */
  readonly onRemoved?: (key: string, left: number) => void;
}

/** Counters, for tests and metrics. */
export interface ObserveStats {
  registered: number;
  /** Removed to make room for a newer registration. */
  evicted: number;
  /** Removed because a confirmable notification went unanswered or was rejected (RST). */
  expired: number;
  /** Registrations not made: the address did not answer the ping. */
  unverified: number;
}

/** All observers of one server, keyed by resource. */
export class ObserveRegistry {
  readonly stats: ObserveStats = { registered: 0, evicted: 0, expired: 0, unverified: 0 };
  private readonly byKey = new Map<string, Map<string, Observer>>();
  /** Per peer address, its observers, oldest first. */
  private readonly byAddress = new Map<string, Set<Observer>>();
  private count = 0;
  private seq = 0;
  private readonly max: number;
  private readonly maxPerAddress: number;
  private readonly confirmMs: number;
  private readonly runtime: Runtime;
  private readonly onRemoved: ObserveOptions['onRemoved'];
  notificationsSent = 0;

  constructor(options: ObserveOptions = {}) {
    this.onRemoved = options.onRemoved;
    this.max = options.maxObservers ?? 1000;
    this.maxPerAddress = options.maxObserversPerAddress ?? 32;
    this.confirmMs = options.confirmIntervalMs ?? 24 * 3600_000;
    this.runtime = options.runtime ?? systemRuntime;
    for (const [name, v] of [['maxObservers', this.max], ['maxObserversPerAddress', this.maxPerAddress]] as const) {
      if (!Number.isInteger(v) || v < 0) throw new CoapfwError('INVALID_ARGUMENT', `observe: ${name} must be an integer >= 0, got ${v}`);
    }
    if (!(this.confirmMs > 0)) throw new CoapfwError('INVALID_ARGUMENT', `observe: confirmIntervalMs must be > 0, got ${this.confirmMs}`);
  }

  /** Number of registrations. */
  get size(): number {
    return this.count;
  }

  /** Registrations of resource `key`. */
  countOf(key: string): number {
    return this.byKey.get(key)?.size ?? 0;
  }

  /** Registrations of one peer address. */
  sizeOf(address: string): number {
    return this.byAddress.get(address)?.size ?? 0;
  }

  /** `resource`, observable under `key`. */
  wrap(key: string, resource: Resource): Resource {
    return {
      methods: resource.methods,
      ...(resource.options === undefined ? {} : { options: resource.options }),
      handle: (req) => {
        const raw = req.message.code === Code.GET ? getOption(req.message, OptionNumber.OBSERVE) : undefined;
        if (raw === undefined) return resource.handle(req);
        const id = `${peerKey(req.peer)}|${bytesToHex(req.message.token)}`;
        let register = false;
        try {
          register = decodeUint(raw) === 0;
        } catch {
          register = false;
        }
        this.remove(key, id); // a re-registration replaces, a deregistration (1) removes
        const ep = req.endpoint;
        if (!register || ep === undefined || this.max === 0 || this.maxPerAddress === 0) return resource.handle(req);
        if (ep.isVerified(req.peer)) return this.registerAndServe(key, id, ep, req, resource);
        return ep.verify(req.peer, requestBytes(req)).then((check) => {
          if (check === 'verified') return this.registerAndServe(key, id, ep, req, resource);
          this.stats.unverified++;
          // 'busy': too many addresses being checked at once; a small "try again in a second".
          if (check === 'busy') return { ...errorResponse(Code.SERVICE_UNAVAILABLE, 'busy'), options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(1) }] };
          return undefined; // nobody answered at that address: nothing to send it
        });
      },
    };
  }

  /** The resource under `key` changed: notify its observers with a fresh representation. */
  changed(key: string, resource: Resource | undefined): void {
    const observers = this.byKey.get(key);
    if (!observers) return;
    if (resource === undefined) return this.end(key, { code: Code.NOT_FOUND }); // gone: §3.2 a final 4.04
    for (const o of [...observers.values()]) {
      o.resource = resource;
      // §4.5: at most one confirmable notification in flight per observer, but
      // the latest state must still arrive: remember it and send it afterwards.
      if (o.busy) o.pending = resource;
      else this.notify(o, resource);
    }
  }

  /**
   * End every observation of `key` with `spec`, a non-2.xx response sent as
   * the final notification (RFC 7641 §4.2: it carries no Observe option and
   * the observer is removed). Without `spec` they are removed silently (their
   * registration's own response, still to come, says it).
   */
  end(key: string, spec: ResponseSpec | undefined): void {
    const observers = this.byKey.get(key);
    if (!observers) return;
    for (const o of [...observers.values()]) {
      if (spec !== undefined) void o.endpoint.notify(o.peer, o.request.token, spec, true, o.requestBytes);
      this.remove(key, o.id);
    }
  }

  /** Stop the periodic confirmations (the server is closing). */
  close(): void {
    for (const observers of this.byKey.values()) for (const o of observers.values()) this.runtime.clearTimer(o.timer);
  }

  private registerAndServe(key: string, id: string, endpoint: CoapEndpoint, req: CoapRequest, resource: Resource): ResponseSpec | undefined | Promise<ResponseSpec | undefined> {
    this.add({ key, id, endpoint, peer: req.peer, request: req.message, requestBytes: requestBytes(req), resource, busy: false, pending: undefined, timer: undefined });
    const result = resource.handle(req);
    const finish = (spec: ResponseSpec | undefined): ResponseSpec | undefined => {
      if (this.byKey.get(key)?.get(id) === undefined) return spec;
      if (spec === undefined || spec.code >> 5 !== 2) {
        this.remove(key, id); // §4.2: an error response ends the observation
        return spec;
      }
      return this.withObserve(spec);
    };
    return result instanceof Promise ? result.then(finish) : finish(result);
  }

  /** Insert `o`, first making room: the address's own oldest beyond its cap, else the oldest of the address holding most. */
  private add(o: Observer): void {
    const mine = this.byAddress.get(o.peer.address);
    if (mine !== undefined && mine.size >= this.maxPerAddress) this.evict(mine);
    if (this.count >= this.max) this.evict(this.heaviestAddress());
    let observers = this.byKey.get(o.key);
    if (!observers) this.byKey.set(o.key, (observers = new Map()));
    observers.set(o.id, o);
    let set = this.byAddress.get(o.peer.address);
    if (!set) this.byAddress.set(o.peer.address, (set = new Set()));
    set.add(o);
    this.count++;
    this.stats.registered++;
    publish('observe', () => ({ type: 'register', peer: `${o.peer.address}:${o.peer.port}`, path: o.key }));
    this.arm(o);
  }

  private evict(set: Set<Observer> | undefined): void {
    const oldest = set?.values().next().value;
    if (oldest === undefined) return;
    this.stats.evicted++;
    this.remove(oldest.key, oldest.id);
  }

  private heaviestAddress(): Set<Observer> | undefined {
    let most: Set<Observer> | undefined;
    for (const set of this.byAddress.values()) if (most === undefined || set.size > most.size) most = set;
    return most;
  }

  /** (Re)start the wait for the periodic confirmable notification. */
  private arm(o: Observer): void {
    this.runtime.clearTimer(o.timer);
    o.timer = this.runtime.setTimer(this.confirmMs, () => {
      o.timer = undefined;
      if (this.byKey.get(o.key)?.get(o.id) === o && !o.busy) this.notify(o, o.resource);
    });
  }

  private notify(o: Observer, resource: Resource): void {
    o.busy = true;
    o.pending = undefined;
    this.runtime.clearTimer(o.timer);
    o.timer = undefined;
    const req: CoapRequest = { message: withoutObserve(o.request), peer: o.peer, endpoint: o.endpoint, size: o.requestBytes };
    Promise.resolve(resource.handle(req))
      .then((spec) => {
        if (spec === undefined) return 'reset' as const; // the resource has nothing to say to it any more
        this.notificationsSent++;
        return o.endpoint.notify(o.peer, o.request.token, this.withObserve(spec), true, o.requestBytes);
      })
      .then((outcome) => {
        o.busy = false;
        if (this.byKey.get(o.key)?.get(o.id) !== o) return;
        if (outcome === 'reset' || outcome === 'timeout') {
          this.stats.expired++;
          this.remove(o.key, o.id);
          return;
        }
        const next = o.pending;
        if (next !== undefined) this.notify(o, next);
        else this.arm(o);
      })
      .catch(() => this.remove(o.key, o.id));
  }

  private withObserve(spec: ResponseSpec): ResponseSpec {
    // §4.4: a 24-bit sequence number, increasing with every notification.
    this.seq = (this.seq + 1) & 0xffffff;
    return { ...spec, options: [...(spec.options ?? []), { number: OptionNumber.OBSERVE, value: encodeUint(this.seq) }] };
  }

  private remove(key: string, id: string): void {
    const observers = this.byKey.get(key);
    const o = observers?.get(id);
    if (o === undefined) return;
    observers!.delete(id);
    if (observers!.size === 0) this.byKey.delete(key);
    const set = this.byAddress.get(o.peer.address);
    set?.delete(o);
    if (set?.size === 0) this.byAddress.delete(o.peer.address);
    this.runtime.clearTimer(o.timer);
    o.timer = undefined;
    this.count--;
    publish('observe', () => ({ type: 'deregister', peer: `${o.peer.address}:${o.peer.port}`, path: key }));
    this.onRemoved?.(key, observers!.size);
  }
}

function withoutObserve(m: CoapMessage): CoapMessage {
  return { ...m, options: m.options.filter((o) => o.number !== OptionNumber.OBSERVE) };
}

/** Size of the request datagram, re-encoded when the endpoint did not say. */
function requestBytes(req: CoapRequest): number {
  return req.size ?? encodeMessage(req.message).length;
}
