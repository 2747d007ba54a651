/**
 * Starting a gateway: the caches, the verifier, the report queue and its
 * forwarder, the upstream clients, and the endpoints towards devices (plain
 * CoAP, coaps with the devices' PSKs, the multicast group sockets), wired to
 * one request handler: proxy requests (Proxy-Uri, Proxy-Scheme) to the
 * forward proxy, everything else to the gateway's own resources and the
 * mirror of the upstream.
 *
 * Embeddable like the file server: it takes a runtime and a transport, and
 * installs no process handlers.
 */
import { join } from 'node:path';
import { szxForSize } from '../codec/block.js';
import { OptionNumber } from '../codec/numbers.js';
import { uriQuery } from '../codec/options.js';
import { parseCoapUri } from '../codec/uri.js';
import type { RequestSpec } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { peerKey, type Peer } from '../core/transport.js';
import { CoapfwError } from '../errors.js';
import { CoapEndpoint, type CoapRequest, type RequestHandler } from '../messaging/endpoint.js';
import { firstResolver, routeRequests, SERVER_OPTIONS, type Resolver } from '../server/router.js';
import { WellKnownCore } from '../server/well-known.js';
import { DtlsServer } from '../transport/dtls/server.js';
import { systemRuntime } from '../transport/runtime.js';
import { BlockCache } from './content-cache.js';
import { DeviceRelay } from './devices.js';
import { discoveryHandler } from './discovery.js';
import { ReportForwarder } from './forwarder.js';
import { gatewayLinks, serviceLinks } from './links.js';
import { listen } from './listen.js';
import type { MulticastListener } from './multicast.js';
import { publish, type GatewayEvent, type GatewayOptions, type GatewayStats } from './options.js';
import { isProxyRequest, proxyHandler } from './proxy.js';
import { exchange, forwardAsIs, targetOf, targetOptions, type RelayContext, type Target } from './relay.js';
import { ReportQueue } from './report-queue.js';
import { originResolver, type RoutesContext } from './routes.js';
import { originOf, OriginPool, Uplink } from './upstream.js';
import { ValidatedCache } from './validated-cache.js';
import { EnvelopeGuard } from './verify.js';
import { ObserveRelay } from './observe-relay.js';
import type { CoapMessage } from '../codec/message.js';

/** A running gateway. */
export interface Gateway {
  /** Every endpoint towards devices: plain CoAP (if any), coaps (if any), the multicast one (if any). */
  readonly endpoints: readonly CoapEndpoint[];
  readonly dtls: DtlsServer | undefined;
  readonly multicast: MulticastListener | undefined;
  readonly cache: BlockCache;
  readonly queue: ReportQueue;
  readonly guard: EnvelopeGuard | undefined;
  readonly uplink: Uplink;
  /** The handler every device endpoint serves: mount it on an endpoint of your own. */
  readonly handler: RequestHandler;
  /** The upstream origin (`coap://host:port`). */
  readonly upstream: string;
  stats(): GatewayStats;
  /** Local address of the first endpoint (plain CoAP when on). */
  address(): Peer;
  /** Forward what the queue holds now; resolves when that attempt ended. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Options the gateway's resources process; other critical ones are 4.02 (RFC 7252 §5.4.1). */
const GATEWAY_OPTIONS: ReadonlySet<number> = new Set([
  ...SERVER_OPTIONS,
  OptionNumber.IF_MATCH,
  OptionNumber.IF_NONE_MATCH,
  OptionNumber.ACCEPT,
  OptionNumber.BLOCK1,
  OptionNumber.LOCATION_PATH,
  OptionNumber.LOCATION_QUERY,
]);

/**
 * Start a gateway in front of `options.upstream`.
 *
 * @example
 * const gw = await startGateway({ upstream: 'coap://fw.example', cacheDir: '/var/cache/coapfw' });
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const runtime: Runtime = options.runtime ?? systemRuntime;
  const emit = (e: GatewayEvent): void => publish(options.onEvent, e);
  const up = parseCoapUri(options.upstream);
  if (up.scheme === 'coaps' && options.upstreamPsk === undefined) {
    throw new CoapfwError('BAD_URI', `gateway: ${options.upstream} needs the gateway's own PSK identity (upstreamPsk)`, { path: options.upstream });
  }
  if (typeof options.cacheDir !== 'string' || options.cacheDir === '') throw new CoapfwError('INVALID_ARGUMENT', 'gateway: cacheDir is required');
  const upstream = targetOf({ ...up, path: [], query: [] });
  const maxSzx = szxForSize(options.maxBlockSize ?? 1024);
  const cacheBytes = options.cacheBytes ?? 1 << 30;
  let own: WellKnownCore | undefined;
  const guard = options.verify === undefined ? undefined : await EnvelopeGuard.open(options.verify, join(options.cacheDir, 'relayed.json'), emit);
  const cache = await BlockCache.open({
    dir: join(options.cacheDir, 'images'),
    runtime,
    maxBytes: cacheBytes,
    maxSzx,
    serveWhileFilling: options.serveWhileFilling,
    onEvent: (e) => {
      if (e.type === 'fill-complete' || e.type === 'evicted') own?.invalidate();
      emit(e);
    },
    check: guard && { holdWhole: looksLikeEnvelope, verify: async (bytes, hex) => void (guard.isEnvelope(bytes) && (await guard.check(bytes, `/fw/sha256/${hex}`))) },
  });
  const queue = await ReportQueue.open(join(options.cacheDir, 'queue'), options.queue);
  const pool = new OriginPool({ runtime, psk: options.upstreamPsk, dtls: options.upstreamDtls, client: options.upstreamClient });
  const uplink = new Uplink();
  const relay: RelayContext = { pool, upstreamOrigin: upstream.origin, uplink, responseTimeoutMs: options.responseTimeoutMs };
  const send = (spec: RequestSpec): ReturnType<typeof exchange> => exchange(relay, upstream, { ...spec, options: [...targetOptions(upstream), ...(spec.options ?? [])] });
  const parts = { devices: undefined as DeviceRelay | undefined, dtlsEndpoint: undefined as CoapEndpoint | undefined };
  const forwarder = new ReportForwarder(queue, send, {
    runtime,
    maxBackoffMs: options.maxForwardBackoffMs,
    registrationOf: (d) => parts.devices?.registrationOf(d),
    onAnswer: (item, res) => parts.devices?.noteAnswer(item, res),
    onOutcome: (item, outcome, code) => emit({ type: 'forwarded', device: item.device, kind: item.kind, outcome, code, seq: item.seq }),
    onAttemptFailed: (item, error) => emit({ type: 'forward-failed', device: item.device, seq: item.seq, error }),
  });
  uplink.onChange((isUp, error) => {
    emit({ type: 'uplink', up: isUp, ...(error !== undefined ? { error } : {}) });
    if (isUp) forwarder.kick(true);
  });
  const observe = options.observe === false ? undefined : new ObserveRelay({ ...options.observe, relay, runtime });
  const identities = new Map<string, string>();
  const devices = (parts.devices = new DeviceRelay({
    queue,
    forwarder,
    send,
    uplink,
    runtime,
    identityOf: (req: CoapRequest) => (req.endpoint !== undefined && req.endpoint === parts.dtlsEndpoint ? identities.get(peerKey(req.peer)) : undefined),
    openRegistration: options.openRegistration ?? options.secure === undefined,
    relayLive: (msg, path) => forwardAsIs(relay, upstreamAt(upstream, path, msg), msg),
    observe: observe && ((req, path) => observe.handle(req, upstreamAt(upstream, path, req.message))),
    onEvent: emit,
  }));
  const validated = new ValidatedCache({ runtime, maxSzx });
  const ctx: RoutesContext = { relay, cache, validated, guard, devices, upstream, runtime, maxImageBytes: options.maxImageBytes ?? cacheBytes, observe };
  own = new WellKnownCore(() => gatewayLinks(cache.links()), runtime);
  const wellKnown = own.resource({ maxSzx });
  const ownResolver: Resolver = (path) => (path.length === 2 && path[0] === '.well-known' && path[1] === 'core' ? wellKnown : undefined);
  const local = routeRequests(firstResolver(ownResolver, originResolver(ctx, upstream, options.mirror !== false)), GATEWAY_OPTIONS);
  const proxy = proxyHandler({ allow: allowOrigins(upstream, options.proxyOrigins), resolverFor: resolvers(ctx), known: GATEWAY_OPTIONS });
  const handler: RequestHandler = (req) => (isProxyRequest(req.message) ? proxy(req) : local(req));

  const listening = await listen(options, identities, emit);
  const endpointOptions = { ...options.endpoint, runtime, params: options.params };
  const endpoints = listening.transports.map((t) => {
    const secure = t instanceof DtlsServer;
    // DTLS proves every address (its cookie exchange): no amplification limit there.
    const e = new CoapEndpoint(t, { ...endpointOptions, ...(secure ? { amplification: false } : {}) });
    e.handle(handler);
    if (secure) parts.dtlsEndpoint = e;
    return e;
  });
  const discovery = { answered: 0, silent: 0 };
  if (listening.multicast !== undefined) {
    const settings = typeof options.discovery === 'object' ? options.discovery : {};
    const mc = new CoapEndpoint(listening.multicast.transport, endpointOptions);
    const links = new WellKnownCore(() => serviceLinks(), runtime);
    const onRequest = (answered: boolean, why: string): void => {
      if (answered) discovery.answered++;
      else discovery.silent++;
      emit({ type: 'discovery', answered, why });
    };
    mc.handle(discoveryHandler(links.resource({ maxSzx }), { runtime, leisureMs: settings.leisureMs, onRequest }));
    endpoints.push(mc);
  }
  forwarder.kick(); // what a previous run left in the queue
  return {
    endpoints,
    dtls: listening.dtls,
    multicast: listening.multicast,
    cache,
    queue,
    guard,
    uplink,
    handler,
    upstream: upstream.origin,
    stats: () => ({
      uplink: { up: uplink.up, outages: uplink.outages },
      cache: { ...cache.stats, objects: cache.objects.count, bytes: cache.objects.bytes, filling: cache.filling },
      validated: { ...validated.stats },
      verification: guard && { ...guard.stats, refused: { ...guard.stats.refused } },
      queue: { ...queue.stats, pending: queue.size, pendingBytes: queue.pendingBytes },
      forwarder: { ...forwarder.stats },
      discovery: { ...discovery, memberships: listening.multicast?.joined.length ?? 0 },
      observe: observe && { ...observe.stats, observers: observe.registry.size, ...observe.registry.stats },
    }),
    address: () => endpoints[0]!.address(),
    flush: () => {
      forwarder.kick(true);
      return forwarder.whenIdle();
    },
    async close() {
      await forwarder.stop();
      observe?.close();
      await Promise.all(endpoints.map((e) => e.close()));
      await listening.multicast?.close();
      await pool.close();
      await cache.close();
      await queue.close();
    },
  };
}

/** `path` (and the request's Uri-Query) at the upstream. */
function upstreamAt(upstream: Target, path: readonly string[], msg: CoapMessage): Target {
  return { origin: upstream.origin, uri: { ...upstream.uri, path: [...path], query: uriQuery(msg) } };
}

/** Whether the first bytes of an image look like a SUIT envelope (tag 107, or a map whose first key is 2): hold it whole until verified. */
export function looksLikeEnvelope(head: Uint8Array): boolean {
  return (head[0] === 0xd8 && head[1] === 0x6b) || ((head[0]! & 0xe0) === 0xa0 && head[1] === 0x02);
}

/** The forward proxy's allowed origins: the upstream, those given, or any. */
function allowOrigins(upstream: Target, extra: GatewayOptions['proxyOrigins']): (origin: string) => boolean {
  if (extra === '*') return () => true;
  const set = new Set([upstream.origin, ...(extra ?? []).map((o) => originOf(parseCoapUri(o)))]);
  return (origin) => set.has(origin);
}

/** One resolver per target origin (bounded, least recently used dropped). */
function resolvers(ctx: RoutesContext): (t: Target) => Resolver {
  const memo = new Map<string, Resolver>();
  return (t) => {
    let r = memo.get(t.origin);
    if (r === undefined) {
      r = originResolver(ctx, t, true);
      memo.set(t.origin, r);
      if (memo.size > 64) memo.delete(memo.keys().next().value!);
    }
    return r;
  };
}
