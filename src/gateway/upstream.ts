/**
 * The gateway's side towards servers: one client endpoint per origin
 * (`coap://host:port` or `coaps://host:port`, RFC 7252 §6), opened on first
 * use and shared by every device behind the gateway, coaps with the
 * gateway's own PSK identity (never a device's). Bounded: at most
 * `maxOrigins` open at once, idle ones closed.
 *
 * {@link Uplink} follows whether the configured upstream answers, from the
 * outcome of every exchange with it, so that the report forwarder and the
 * logs know when the uplink went down and came back.
 */
import { openClient, type ClientOptions, type CoapClient } from '../client/open.js';
import type { PskCredentials, SecureClientOptions } from '../client/secure.js';
import { formatCoapUri, type CoapUri } from '../codec/uri.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';

/** `scheme://host:port` of a URI, the key of a client (default port written out). */
export function originOf(uri: Pick<CoapUri, 'scheme' | 'host' | 'port'>): string {
  const host = uri.host.includes(':') ? `[${uri.host}]` : uri.host;
  return `${uri.scheme}://${host}:${uri.port}`;
}

/** The absolute URI of `path` and `query` at `origin` (as {@link formatCoapUri} writes it). */
export function uriAt(origin: CoapUri, path: readonly string[], query: readonly string[] = []): string {
  return formatCoapUri({ ...origin, path: [...path], query: [...query] });
}

/** Options of {@link OriginPool}. */
export interface OriginPoolOptions {
  readonly runtime: Runtime;
  /** The gateway's own PSK identity for coaps origins. */
  readonly psk?: PskCredentials;
  readonly dtls?: SecureClientOptions;
  /** Origins open at once; the least recently used idle one is closed beyond this. Default 16. */
  readonly maxOrigins?: number;
  /** Close an origin's client after this long without a request. Default 300,000 ms. */
  readonly idleMs?: number;
  /** Endpoint and transport settings of every client (tests wrap the transport). */
  readonly client?: Omit<ClientOptions, 'runtime' | 'psk' | 'dtls'>;
}

interface Slot {
  readonly client: Promise<CoapClient>;
  lastUse: number;
  busy: number;
}

/** Client endpoints by origin. */
export class OriginPool {
  private readonly slots = new Map<string, Slot>();
  private closed = false;
  private readonly maxOrigins: number;
  private readonly idleMs: number;

  constructor(private readonly options: OriginPoolOptions) {
    this.maxOrigins = options.maxOrigins ?? 16;
    this.idleMs = options.idleMs ?? 300_000;
    if (!Number.isInteger(this.maxOrigins) || this.maxOrigins < 1) throw new CoapfwError('INVALID_ARGUMENT', `gateway: maxOrigins must be an integer >= 1, got ${this.maxOrigins}`);
  }

  /**
   * Run `fn` with the client of `origin` (opened if needed; a failed open is
   * not remembered, the next call tries again). coaps without the gateway's
   * PSK is BAD_URI.
   */
  async with<T>(origin: string, fn: (client: CoapClient) => Promise<T>): Promise<T> {
    if (this.closed) throw new CoapfwError('TRANSPORT_CLOSED', 'gateway: upstream clients are closed');
    const slot = this.slot(origin);
    slot.busy++;
    try {
      return await fn(await slot.client);
    } finally {
      slot.busy--;
      slot.lastUse = this.options.runtime.now();
    }
  }

  /** Close every client. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(all.map((s) => s.client.then((c) => c.close(), () => undefined)));
  }

  private slot(origin: string): Slot {
    const now = this.options.runtime.now();
    let slot = this.slots.get(origin);
    if (slot !== undefined) {
      this.slots.delete(origin); // most recently used last
      this.slots.set(origin, slot);
      return slot;
    }
    this.expire(now);
    const client = openClient(`${origin}/`, {
      // An ICMP "port unreachable" fails the request at once: a device waiting on the gateway gets 5.02 now, not after 93 s.
      unreachable: 'fail',
      ...this.options.client,
      runtime: this.options.runtime,
      psk: this.options.psk,
      dtls: this.options.dtls,
    });
    slot = { client, lastUse: now, busy: 0 };
    this.slots.set(origin, slot);
    client.catch(() => {
      // A failed open (DNS, handshake) is the caller's error; the next request opens afresh.
      if (this.slots.get(origin) === slot) this.slots.delete(origin);
    });
    return slot;
  }

  /** Close idle clients past `idleMs`, and the least recently used idle ones beyond `maxOrigins - 1`. */
  private expire(now: number): void {
    for (const [origin, s] of this.slots) {
      const over = this.slots.size >= this.maxOrigins;
      if (s.busy > 0 || (!over && now - s.lastUse < this.idleMs)) continue;
      this.slots.delete(origin);
      void s.client.then((c) => c.close(), () => undefined);
    }
  }
}

/** Whether an upstream failure is the network or the server being away (worth waiting for), not an answer. */
export function isUplinkFailure(e: unknown): boolean {
  return (
    isCoapfwError(e, 'TIMEOUT') ||
    isCoapfwError(e, 'UNREACHABLE') ||
    isCoapfwError(e, 'IO_ERROR') ||
    isCoapfwError(e, 'RESET') ||
    isCoapfwError(e, 'DTLS_HANDSHAKE_FAILED') ||
    isCoapfwError(e, 'TRANSPORT_CLOSED')
  );
}

/** Whether the configured upstream answers, from what the last exchanges with it did. */
export class Uplink {
  private upNow = true;
  private readonly listeners: Array<(up: boolean, cause?: unknown) => void> = [];
  /** Transitions down (outages seen). */
  outages = 0;

  /** True until an exchange fails with {@link isUplinkFailure}, again after one succeeds. */
  get up(): boolean {
    return this.upNow;
  }

  /** Be told of every transition. */
  onChange(listener: (up: boolean, cause?: unknown) => void): void {
    this.listeners.push(listener);
  }

  /** An exchange with the upstream got an answer (any code). */
  answered(): void {
    if (this.upNow) return;
    this.upNow = true;
    for (const l of this.listeners) l(true);
  }

  /** An exchange failed: the uplink is down if it was the network's fault. */
  failed(e: unknown): void {
    if (!isUplinkFailure(e) || !this.upNow) return;
    this.upNow = false;
    this.outages++;
    for (const l of this.listeners) l(false, e);
  }
}
