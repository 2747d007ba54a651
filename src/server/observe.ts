/**
 * Observe (RFC 7641) for server resources: a device registers with
 * `GET + Observe: 0` on, say, its manifest, and is told when a new one is
 * published instead of polling. Registrations are bounded in number;
 * notifications are confirmable, and an observer that answers with RST or
 * stops answering is removed (§4.2, §4.5).
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { decodeUint, encodeUint, getOption } from '../codec/options.js';
import type { CoapEndpoint, CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import { peerKey, type Peer } from '../transport/types.js';
import type { Resource } from './router.js';

interface Observer {
  readonly endpoint: CoapEndpoint;
  readonly peer: Peer;
  readonly request: CoapMessage;
  /** A confirmable notification is in flight. */
  busy: boolean;
  /** The latest representation changed while busy: send this one when the in-flight one completes. */
  pending: Resource | undefined;
}

/** Registry settings. */
export interface ObserveOptions {
  /** Registrations in all, over every resource. Default 1000. */
  readonly maxObservers?: number;
}

/** All observers of one server, keyed by resource. */
export class ObserveRegistry {
  private readonly byKey = new Map<string, Map<string, Observer>>();
  private count = 0;
  private seq = 0;
  private readonly max: number;
  notificationsSent = 0;

  constructor(options: ObserveOptions = {}) {
    this.max = options.maxObservers ?? 1000;
  }

  /** Number of registrations. */
  get size(): number {
    return this.count;
  }

  /** `resource`, observable under `key`. */
  wrap(key: string, resource: Resource): Resource {
    return {
      methods: resource.methods,
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
        this.remove(key, id);
        if (register && this.count < this.max && req.endpoint !== undefined) {
          let observers = this.byKey.get(key);
          if (!observers) this.byKey.set(key, (observers = new Map()));
          observers.set(id, { endpoint: req.endpoint, peer: req.peer, request: req.message, busy: false, pending: undefined });
          this.count++;
        }
        const result = resource.handle(req);
        const registered = this.byKey.get(key)?.has(id) ?? false;
        const finish = (spec: ResponseSpec): ResponseSpec => {
          if (!registered) return spec;
          if (spec.code >> 5 !== 2) {
            this.remove(key, id); // §4.2: an error response ends the observation
            return spec;
          }
          return this.withObserve(spec);
        };
        return result instanceof Promise ? result.then(finish) : finish(result);
      },
    };
  }

  /** The resource under `key` changed: notify its observers with a fresh representation. */
  changed(key: string, resource: Resource | undefined): void {
    const observers = this.byKey.get(key);
    if (!observers) return;
    for (const [id, o] of observers) {
      if (resource === undefined) {
        // Gone: §3.2 a final 4.04 ends the observation.
        void o.endpoint.notify(o.peer, o.request.token, { code: Code.NOT_FOUND }, true);
        this.remove(key, id);
        continue;
      }
      // §4.5: at most one confirmable notification in flight per observer, but
      // the latest state must still arrive: remember it and send it afterwards.
      if (o.busy) o.pending = resource;
      else this.notify(key, id, o, resource);
    }
  }

  private notify(key: string, id: string, o: Observer, resource: Resource): void {
    o.busy = true;
    o.pending = undefined;
    const req: CoapRequest = { message: withoutObserve(o.request), peer: o.peer, endpoint: o.endpoint };
    Promise.resolve(resource.handle(req))
      .then((spec) => {
        this.notificationsSent++;
        return o.endpoint.notify(o.peer, o.request.token, this.withObserve(spec), true);
      })
      .then((outcome) => {
        o.busy = false;
        if (outcome === 'reset' || outcome === 'timeout') return this.remove(key, id);
        const next = o.pending;
        if (next !== undefined && this.byKey.get(key)?.get(id) === o) this.notify(key, id, o, next);
      })
      .catch(() => this.remove(key, id));
  }

  private withObserve(spec: ResponseSpec): ResponseSpec {
    // §4.4: a 24-bit sequence number, increasing with every notification.
    this.seq = (this.seq + 1) & 0xffffff;
    return { ...spec, options: [...(spec.options ?? []), { number: OptionNumber.OBSERVE, value: encodeUint(this.seq) }] };
  }

  private remove(key: string, id: string): void {
    const observers = this.byKey.get(key);
    if (observers?.delete(id)) {
      this.count--;
      if (observers.size === 0) this.byKey.delete(key);
    }
  }
}

function withoutObserve(m: CoapMessage): CoapMessage {
  return { ...m, options: m.options.filter((o) => o.number !== OptionNumber.OBSERVE) };
}
