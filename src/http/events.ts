/**
 * Server-sent events for the fleet page: the Store's change events
 * (Store.subscribe, which on PostgreSQL includes other servers' changes),
 * coalesced per client into at most one `change` event per `coalesceMs`
 * naming what changed (`{"kinds":["device","rollout"],"rollouts":[3]}`), so
 * a fleet reporting a thousand times a second costs each page a few
 * refreshes a second. Bounded: at most `maxClients` streams (503 beyond), a
 * comment line every `heartbeatMs` keeps proxies from closing idle streams.
 */
import type { ServerResponse } from 'node:http';
import type { Store, StoreChange } from '../service/store.js';

/** Options of {@link EventHub}. */
export interface EventHubOptions {
  /** Most open event streams. Default 64. */
  readonly maxClients?: number;
  /** Changes within this window go out as one event. Default 250 ms. */
  readonly coalesceMs?: number;
  /** A keep-alive comment this often. Default 15000 ms. */
  readonly heartbeatMs?: number;
}

interface Pending {
  kinds: Set<string>;
  rollouts: Set<number>;
  devices: Set<string>;
}

/** Most device ids named in one event (beyond, the page reloads the list it shows). */
const MAX_NAMED = 100;

/** Fans Store changes out to event-stream clients. */
export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private readonly maxClients: number;
  private readonly coalesceMs: number;
  private pending: Pending | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private readonly unsubscribe: () => void;

  constructor(store: Store, options: EventHubOptions = {}) {
    this.maxClients = options.maxClients ?? 64;
    this.coalesceMs = options.coalesceMs ?? 250;
    this.unsubscribe = store.subscribe((c) => this.onChange(c));
    this.heartbeat = setInterval(() => this.write(': keep-alive\n\n'), options.heartbeatMs ?? 15_000);
    this.heartbeat.unref();
  }

  /** Open streams. */
  get size(): number {
    return this.clients.size;
  }

  /** Take `res` as an event stream; false (nothing written) when the hub is full. */
  attach(res: ServerResponse): boolean {
    if (this.clients.size >= this.maxClients) return false;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // `retry` tells the browser's EventSource how soon to reconnect after a server restart.
    res.write('retry: 2000\n\nevent: hello\ndata: {}\n\n');
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
    return true;
  }

  /** End every stream and stop listening. */
  close(): void {
    this.unsubscribe();
    clearInterval(this.heartbeat);
    clearTimeout(this.flushTimer);
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  private onChange(c: StoreChange): void {
    if (this.clients.size === 0) return;
    const p = (this.pending ??= { kinds: new Set(), rollouts: new Set(), devices: new Set() });
    p.kinds.add(c.kind);
    if (c.kind === 'rollout') p.rollouts.add(c.rolloutId);
    if ((c.kind === 'device' || c.kind === 'command') && p.devices.size < MAX_NAMED) p.devices.add(c.deviceId);
    this.flushTimer ??= setTimeout(() => this.flush(), this.coalesceMs);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (p === undefined) return;
    const data = JSON.stringify({ kinds: [...p.kinds], rollouts: [...p.rollouts], devices: [...p.devices] });
    this.write(`event: change\ndata: ${data}\n\n`);
  }

  private write(text: string): void {
    for (const c of this.clients) {
      // A client that stopped reading: drop it rather than buffer without bound.
      if (c.writableLength > 1024 * 1024) c.destroy();
      else c.write(text);
    }
  }
}
