/**
 * Starting a server: bind, wire the endpoint to a resolver, refresh the
 * repository periodically, close everything on stop.
 *
 * Embeddable (like ws's `noServer`): the caller may bring its own transports
 * (`transport`, `transports`, `coap: false`), its own resources routed before
 * the file resources (`resources`, `links`), and its own clock and timers
 * (`runtime`). The server installs no process handlers and keeps no timer
 * that holds the process open.
 *
 * One repository and one resolver can be served on several transports at
 * once, one {@link CoapEndpoint} each: plain CoAP on UDP 5683 and coaps on a
 * DTLS server at 5684 (RFC 7252 §6.2) see the same files. Message IDs and
 * duplicate detection are per endpoint, as they must be per security context.
 */
import { szxForSize } from '../codec/block.js';
import type { Link } from '../codec/link-format.js';
import type { Runtime } from '../core/runtime.js';
import { CoapEndpoint, type CoapRequest, type EndpointOptions, type RequestHandler } from '../messaging/endpoint.js';
import type { TransmissionParams } from '../messaging/params.js';
import { createDtlsServer, DtlsServer, type DtlsServerOptions } from '../transport/dtls/server.js';
import { CoapfwError } from '../errors.js';
import { systemRuntime } from '../transport/runtime.js';
import type { Peer, Transport } from '../core/transport.js';
import { UdpTransport } from '../transport/udp.js';
import { fileResources, type BodyServing, type FileResourceStats, type QBlock2ServeOptions } from './file-server.js';
import { FileRepository, type FileRepositoryOptions } from './files.js';
import { echoGuard, type EchoGuardOptions } from './echo-guard.js';
import { verifiedGate } from '../blockwise/qblock2-endpoint.js';
import { ObserveRegistry, type ObserveOptions } from './observe.js';
import { firstResolver, routeRequests, type Resolver } from './router.js';
import { StatusTracker, type StatusOptions } from './status.js';
import { startTrustResources, type TrustResources } from './trust-resources.js';
import { directoryTrustSource, type TrustSource } from './trust-source.js';
import { join } from 'node:path';
import type { WellKnownOptions } from './well-known.js';

/** Options of {@link startFileServer}. */
export interface FileServerOptions extends FileRepositoryOptions {
  readonly dir: string;
  /** Bind address; default `::` (IPv6 and IPv4), falling back to `0.0.0.0`. */
  readonly host?: string;
  /** Default 5683. */
  readonly port?: number;
  /** Largest block size served, 16..1024. Default 1024. */
  readonly maxBlockSize?: number;
  /** Use this transport instead of binding UDP (DTLS, impaired, tests). */
  readonly transport?: Transport;
  /** More transports serving the same resources (each gets its own endpoint), e.g. a DTLS server. */
  readonly transports?: readonly Transport[];
  /** Bind plain CoAP on UDP (`host`, `port`) when no `transport` is given. Default true. */
  readonly coap?: boolean;
  /** Also serve coaps: a DTLS 1.2 PSK server bound on `host` (default `::`, else `0.0.0.0`) and `port` (default 5684). */
  readonly secure?: SecureListenOptions;
  /** Rescan the directory this often; 0 disables. Default 2000 ms. */
  readonly refreshMs?: number;
  readonly params?: Partial<TransmissionParams>;
  readonly endpoint?: Omit<EndpointOptions, 'runtime' | 'params'>;
  /**
   * Full amplification protection (RFC 9175 Echo) on plain CoAP: a large
   * first response to an unverified address is replaced by a 4.01 with an
   * Echo value. Off by default: node-coap's Agent and libcoap's single-block
   * requests (`-b N,SIZE`) do not repeat a request with the Echo value, so a
   * lab server would break them. Turn it on for a server reachable from the
   * Internet. Without it the endpoint still sends an unverified address
   * nothing beyond its first response that exceeds 3x the request: no Observe
   * registration before a ping is answered, no CON retransmission the budget
   * does not cover (`endpoint.amplification`). coaps needs none of this: the
   * DTLS cookie exchange already proves the address.
   */
  readonly echo?: boolean | Omit<EchoGuardOptions, 'runtime'>;
  /** Status tracker limits (the `/status` resources). */
  readonly status?: Omit<StatusOptions, 'runtime'>;
  /** Observe limits (files are observable). */
  readonly observe?: ObserveOptions;
  /** /.well-known/core limits: cached query results, per-peer and overall query rates. */
  readonly wellKnown?: WellKnownOptions;
  /**
   * Your own resources, asked first: answer `undefined` for a path to leave
   * it to the file resources (so you may also shadow one of them). Build one
   * with {@link resourceTable}, or write a resolver over any path scheme.
   */
  readonly resources?: Resolver;
  /**
   * Resources asked last, for paths neither `resources` nor the files know:
   * the update service serves the blobs of its database under
   * `/fw/sha256/<hex>` here, so that a file of the directory with the same
   * content keeps being served from the directory.
   */
  readonly fallback?: Resolver;
  /** Links for your `resources` in `/.well-known/core` (RFC 6690), listed before the files. */
  readonly links?: readonly Link[];
  /**
   * Q-Block2 (RFC 9177) for files, /fw/sha256 and /.well-known/core, on by
   * default; `false`: such requests get 4.02 (the client falls back to
   * Block2). Bursts go only to verified addresses: with `echo`, those that
   * showed an Echo value; else those that answered a CON of ours (a ping
   * within the amplification budget, if need be).
   */
  readonly qblock2?: QBlock2ServeOptions | false;
  /** Clock, timers and randomness of every part of the server. Default {@link systemRuntime}. */
  readonly runtime?: Runtime;
  /**
   * The trust documents served at `/trust/...` (server/trust-resources.ts):
   * default the files of `DIR/.trust/` (reloaded every `refreshMs`), or a
   * source of your own (the update service's store: `storeTrustSource`); false: none.
   */
  readonly trust?: TrustSource | false;
}

/** Where and how to serve coaps. */
export interface SecureListenOptions extends Omit<DtlsServerOptions, 'transport' | 'bind'> {
  /** Bind address; default `::` (IPv6 and IPv4), falling back to `0.0.0.0`. */
  readonly host?: string;
  /** Default 5684 (RFC 7252 §6.2); 0 for an ephemeral port. */
  readonly port?: number;
}

/** A running file server. */
export interface FileServer {
  /** The first endpoint: plain CoAP, or coaps when plain CoAP is off. */
  readonly endpoint: CoapEndpoint;
  /** Every endpoint, in order: plain CoAP (if any), `transports`, then coaps from `secure`. */
  readonly endpoints: readonly CoapEndpoint[];
  /** The DTLS server started for `secure`, if any. */
  readonly dtls: DtlsServer | undefined;
  readonly repo: FileRepository;
  /** Device reports received at `/status/<device>`. */
  readonly status: StatusTracker;
  readonly observe: ObserveRegistry;
  /** Counters of the file resources (blocks served). */
  readonly files: FileResourceStats;
  /** How the files' bodies are served (Q-Block2 or Block2), for resources of yours that serve bodies alike. */
  readonly body: BodyServing;
  /** The trust resources, unless `trust: false`. */
  readonly trust: TrustResources | undefined;
  /**
   * The routing handler every endpoint serves (before the Echo guard): mount
   * it on an endpoint of your own with `endpoint.handle(server.handler)`.
   */
  readonly handler: RequestHandler;
  /** Who sent a request: its DTLS PSK identity when it came over coaps. */
  identify(req: CoapRequest): PeerIdentity;
  /** Local address of the first endpoint. */
  address(): Peer;
  close(): Promise<void>;
}

/**
 * Who sent a request, as far as the transport can tell: over coaps the PSK
 * identity its DTLS session authenticated (RFC 7925 §4.2), over plain CoAP
 * nothing but an address anyone can forge.
 */
export type PeerIdentity = { readonly secure: false } | { readonly secure: true; readonly identity: string };

const INSECURE: PeerIdentity = Object.freeze({ secure: false });

/** Index `dir` and serve it over CoAP and/or coaps. */
export async function startFileServer(options: FileServerOptions): Promise<FileServer> {
  const maxSzx = szxForSize(options.maxBlockSize ?? 1024);
  const refreshMs = options.refreshMs ?? 2000;
  if (!(refreshMs >= 0)) throw new CoapfwError('INVALID_ARGUMENT', `serve: refreshMs must be >= 0, got ${refreshMs}`);
  const repo = await FileRepository.open(options.dir, options);
  const runtime = options.runtime ?? systemRuntime;
  const observe = new ObserveRegistry({ runtime, ...options.observe });
  // Requests over these endpoints came inside DTLS (the coaps-only trust resource and the service's identities ask).
  const secureEndpoints = new Map<CoapEndpoint, DtlsServer>();
  let trust: TrustResources | undefined;
  try {
    const source = options.trust === false ? undefined : (options.trust ?? directoryTrustSource(join(options.dir, '.trust'), { onError: (e) => repo.report(e) }));
    trust = source && (await startTrustResources({ source, runtime, observe, refreshMs, maxSzx, isSecure: (req) => req.endpoint !== undefined && secureEndpoints.has(req.endpoint), onError: (e) => repo.report(e) }));
  } catch (e) {
    await repo.close();
    throw e;
  }
  const transports: Transport[] = [];
  let dtls: DtlsServer | undefined;
  try {
    if (options.transport) transports.push(options.transport);
    else if (options.coap !== false) transports.push(await bindDefault(options.host, options.port ?? 5683));
    transports.push(...(options.transports ?? []));
    if (options.secure) transports.push((dtls = await listenDtls(options.secure)));
    if (transports.length === 0) throw new CoapfwError('INVALID_ARGUMENT', 'serve: nothing to listen on (plain CoAP is off and no secure or other transport given)');
  } catch (e) {
    await Promise.all(transports.map((t) => t.close()));
    trust?.close();
    await repo.close();
    throw e;
  }
  const status = new StatusTracker({ ...options.status, runtime });
  const guards = new WeakMap<CoapEndpoint, ReturnType<typeof echoGuard>>();
  const files = fileResources(repo, { maxSzx, status, observe, wellKnown: options.wellKnown, runtime, links: [...(options.links ?? []), ...(trust?.links ?? [])], qblock2: qblock2Options(options.qblock2, guards, runtime) });
  const resolvers = [options.resources, trust?.resolve, files, options.fallback].filter((r): r is Resolver => r !== undefined);
  const handler = routeRequests(resolvers.length === 1 ? files : firstResolver(...resolvers));
  const echo = options.echo ?? false;
  const endpoints = transports.map((t) => {
    const secure = t instanceof DtlsServer;
    // DTLS proves every address (its cookie exchange, RFC 6347 §4.2.1): no amplification limit there.
    const endpoint = new CoapEndpoint(t, { ...options.endpoint, ...(secure ? { amplification: false } : {}), runtime, params: options.params });
    const guard = echo === false || secure ? undefined : echoGuard(handler, { ...(echo === true ? {} : echo), runtime });
    if (guard) guards.set(endpoint, guard);
    endpoint.handle(guard ?? handler);
    if (secure) secureEndpoints.set(endpoint, t);
    return endpoint;
  });
  const endpoint = endpoints[0]!;
  const stopRefresh = refreshPeriodically(repo, runtime, refreshMs);
  return {
    endpoint,
    endpoints,
    dtls,
    repo,
    status,
    observe,
    files: files.stats,
    body: files.body,
    trust,
    handler,
    identify(req: CoapRequest): PeerIdentity {
      const dtls = req.endpoint === undefined ? undefined : secureEndpoints.get(req.endpoint);
      const identity = dtls?.identityOf(req.peer);
      return identity === undefined ? INSECURE : { secure: true, identity };
    },
    address: () => endpoint.address(),
    async close() {
      stopRefresh();
      trust?.close();
      observe.close();
      files.qblock2?.close();
      await Promise.all(endpoints.map((e) => e.close()));
      await repo.close();
    },
  };
}

/**
 * Q-Block2 as the server runs it: with an Echo guard on an endpoint, a burst
 * goes only to an address that showed an Echo value (the guard's own check);
 * the rest of a burst leaves on the next turn of the event loop after the
 * first response (setImmediate: a 0 ms timer waits a millisecond), unless a
 * runtime of the caller's drives the clock.
 */
function qblock2Options(o: QBlock2ServeOptions | false | undefined, guards: WeakMap<CoapEndpoint, ReturnType<typeof echoGuard>>, runtime: Runtime): QBlock2ServeOptions | false {
  if (o === false) return false;
  return {
    ...(runtime === systemRuntime ? { defer: (fn: () => void) => void setImmediate(fn) } : {}),
    ...o,
    gate: (endpoint) => {
      const guard = guards.get(endpoint);
      if (guard !== undefined) return (peer) => guard.isVerified(peer);
      return o?.gate?.(endpoint) ?? verifiedGate(endpoint);
    },
  };
}

/**
 * Rescan `repo` every `ms` on the runtime's timers (none when `ms` is 0): the
 * next scan is armed when one finishes, so scans never overlap. Returns stop.
 */
function refreshPeriodically(repo: FileRepository, runtime: Runtime, ms: number): () => void {
  if (ms === 0) return () => {};
  let stopped = false;
  let timer = runtime.setTimer(ms, tick);
  function tick(): void {
    repo
      .refresh()
      .catch((e: unknown) => repo.report(e))
      .finally(() => {
        if (!stopped) timer = runtime.setTimer(ms, tick);
      });
  }
  return () => {
    stopped = true;
    runtime.clearTimer(timer);
  };
}

/** Bind UDP like {@link bindDefault} (port 5684 by default) and run a DTLS PSK server on it. */
export async function listenDtls(options: SecureListenOptions): Promise<DtlsServer> {
  const { host, port, ...dtlsOptions } = options;
  const udp = await bindDefault(host, port ?? 5684);
  try {
    return await createDtlsServer({ ...dtlsOptions, transport: udp });
  } catch (e) {
    await udp.close();
    throw e;
  }
}

/** Bind UDP: the given host, or dual-stack `::`, or `0.0.0.0` where IPv6 is missing. */
export async function bindDefault(host: string | undefined, port: number): Promise<UdpTransport> {
  if (host !== undefined) return UdpTransport.bind({ host, port, recvBufferSize: 4 * 1024 * 1024 });
  try {
    return await UdpTransport.bind({ host: '::', port, recvBufferSize: 4 * 1024 * 1024 });
  } catch {
    return UdpTransport.bind({ host: '0.0.0.0', port, recvBufferSize: 4 * 1024 * 1024 });
  }
}
