/**
 * What a gateway is told ({@link GatewayOptions}), what it says while it
 * runs ({@link GatewayEvent}, also on the `coapfw:gateway` diagnostics
 * channel and, with NODE_DEBUG=coapfw, on stderr) and what it counts
 * ({@link GatewayStats}). Every limit has a safe default.
 */
import { channel } from 'node:diagnostics_channel';
import { debuglog } from 'node:util';
import type { PskCredentials, SecureClientOptions } from '../client/secure.js';
import type { Runtime } from '../core/runtime.js';
import type { Transport } from '../core/transport.js';
import type { EndpointOptions } from '../messaging/endpoint.js';
import type { TransmissionParams } from '../messaging/params.js';
import type { SecureListenOptions } from '../server/serve.js';
import type { BlockCacheStats, CacheEvent } from './content-cache.js';
import type { DeviceEvent } from './devices.js';
import type { ForwarderStats } from './forwarder.js';
import type { ReportOutcome, ReportQueueOptions, ReportQueueStats } from './report-queue.js';
import type { ObserveStats } from '../server/observe.js';
import type { ObserveRelaySettings, ObserveRelayStats } from './observe-relay.js';
import type { OriginPoolOptions } from './upstream.js';
import type { ValidatedCacheStats } from './validated-cache.js';
import type { EnvelopePolicy, VerificationEvent, VerificationStats } from './verify.js';

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  /** The update server: `coap://host[:port]` or `coaps://host[:port]` (a path is ignored). */
  readonly upstream: string;
  /** The gateway's own PSK identity towards a coaps upstream (a `gateway` role there). */
  readonly upstreamPsk?: PskCredentials;
  /** DTLS client tuning towards the upstream. */
  readonly upstreamDtls?: SecureClientOptions;
  /** The directory of the image cache, the report queue and the rollback memory. */
  readonly cacheDir: string;
  /** Bytes of images on disk, least recently served dropped first. Default 1 GiB. */
  readonly cacheBytes?: number;
  /** Largest image fetched into the cache. Default `cacheBytes`. */
  readonly maxImageBytes?: number;
  /** Serve blocks of an image before all of it arrived and verified (never its last block). Default true. */
  readonly serveWhileFilling?: boolean;
  /** Verify SUIT envelopes on behalf of devices (trust anchors, classes, vendors). Off when absent. */
  readonly verify?: EnvelopePolicy;
  /** Limits of the report queue. */
  readonly queue?: ReportQueueOptions;
  /** Longest wait between forwarding attempts while the uplink is down. Default 30,000 ms. */
  readonly maxForwardBackoffMs?: number;
  /** Accept `/d/<id>` over plain CoAP. Default true without `secure` (a lab), false with it. */
  readonly openRegistration?: boolean;
  /** Serve every other upstream path under the same path here (the mirror). Default true. */
  readonly mirror?: boolean;
  /** Origins the forward proxy may reach besides the upstream (`coap://host:port`), or `'*'` for any (an open proxy). */
  readonly proxyOrigins?: readonly string[] | '*';
  /** Answer multicast discovery on the All-CoAP-Nodes groups. Default off (the CLI turns it on). */
  readonly discovery?: boolean | DiscoverySettings;
  /** Bind address for devices; default `::` (IPv6 and IPv4), else `0.0.0.0`. */
  readonly host?: string;
  /** Default 5683. */
  readonly port?: number;
  /** Use this transport for devices instead of binding UDP (then no discovery). */
  readonly transport?: Transport;
  /** Plain CoAP towards devices. Default true. */
  readonly coap?: boolean;
  /** coaps towards devices: their PSKs (`psk`), where to listen. */
  readonly secure?: SecureListenOptions;
  /** Largest block size served to devices, 16..1024. Default 1024. */
  readonly maxBlockSize?: number;
  /**
   * Observe through the gateway (RFC 7641 §5): limits of the devices'
   * registrations here and of the gateway's upstream, or false to answer
   * every GET with Observe unobserved. Default on, with the defaults of
   * {@link ObserveRelaySettings}.
   */
  readonly observe?: ObserveRelaySettings | false;
  /** How long to wait for an upstream answer. Default 10,000 ms. */
  readonly responseTimeoutMs?: number;
  readonly params?: Partial<TransmissionParams>;
  readonly endpoint?: Omit<EndpointOptions, 'runtime' | 'params'>;
  /** Settings of the upstream clients (tests wrap their transports). */
  readonly upstreamClient?: OriginPoolOptions['client'];
  readonly runtime?: Runtime;
  readonly onEvent?: (e: GatewayEvent) => void;
}

/** Discovery settings. */
export interface DiscoverySettings {
  /** Longest random delay before answering (RFC 7252 §8.2). Default 1000 ms. */
  readonly leisureMs?: number;
  /** Interfaces to join on (names). Default every one that can. */
  readonly interfaces?: readonly string[];
  /** Groups to join. Default 224.0.1.187, ff02::fd, ff05::fd. */
  readonly groups?: readonly string[];
}

/** Everything a gateway reports. */
export type GatewayEvent =
  | CacheEvent
  | VerificationEvent
  | DeviceEvent
  | { readonly type: 'uplink'; readonly up: boolean; readonly error?: unknown }
  | { readonly type: 'forwarded'; readonly device: string; readonly kind: string; readonly outcome: ReportOutcome; readonly code: number; readonly seq: number }
  | { readonly type: 'forward-failed'; readonly device: string; readonly seq: number; readonly error: unknown }
  | { readonly type: 'discovery'; readonly answered: boolean; readonly why: string }
  | { readonly type: 'multicast-error'; readonly error: unknown }
  | { readonly type: 'dtls'; readonly event: string; readonly peer: string; readonly identity?: string; readonly reason?: string };

/** A snapshot of the counters. */
export interface GatewayStats {
  readonly uplink: { readonly up: boolean; readonly outages: number };
  readonly cache: BlockCacheStats & { readonly objects: number; readonly bytes: number; readonly filling: number };
  readonly validated: ValidatedCacheStats;
  readonly verification: VerificationStats | undefined;
  readonly queue: ReportQueueStats & { readonly pending: number; readonly pendingBytes: number };
  readonly forwarder: ForwarderStats;
  readonly discovery: { readonly answered: number; readonly silent: number; readonly memberships: number };
  /** The Observe relay (off: undefined): its counters, registrations here now and the registry's counters. */
  readonly observe: (ObserveRelayStats & ObserveStats & { readonly observers: number }) | undefined;
}

const diagnostics = channel('coapfw:gateway');
const debug = debuglog('coapfw');

/** Hand `e` to the callback, the diagnostics channel and NODE_DEBUG. A failing callback must not stop the gateway. */
export function publish(onEvent: ((e: GatewayEvent) => void) | undefined, e: GatewayEvent): void {
  if (diagnostics.hasSubscribers) diagnostics.publish(e);
  debug('gateway %s %o', e.type, e);
  try {
    onEvent?.(e);
  } catch {
    // A logger that throws is the embedder's bug; the gateway keeps serving.
  }
}
