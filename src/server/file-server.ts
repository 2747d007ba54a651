/**
 * `coapfw serve DIR`: the TFTP replacement. Every regular file under DIR is
 * served at `/files/<relative path>` and, content-addressed and immutable, at
 * `/fw/sha256/<hex>`; both are listed in `/.well-known/core` (RFC 6690).
 */
import { endpointSender, verifiedGate } from '../blockwise/qblock2-endpoint.js';
import { hasQBlock2, QBlock2Server, type QBlock2ServerOptions } from '../blockwise/qblock2-server.js';
import { serveBlock2, type Block2ServeOptions } from '../blockwise/serve.js';
import type { ByteSource } from '../blockwise/source.js';
import type { Link } from '../codec/link-format.js';
import { Code, ContentFormat, OptionNumber } from '../codec/numbers.js';
import type { Peer } from '../core/transport.js';
import type { CoapEndpoint, CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime } from '../core/runtime.js';
import { systemRuntime } from '../transport/runtime.js';
import type { FileEntry, FileRepository } from './files.js';
import type { ObserveRegistry } from './observe.js';
import type { Resolver, Resource } from './router.js';
import { errorResponse } from './responses.js';
import type { StatusTracker } from './status.js';
import { WellKnownCore, type WellKnownOptions } from './well-known.js';

const GET_ONLY: ReadonlySet<number> = new Set([Code.GET]);
/** The critical options the resources that can answer Q-Block2 process beyond the server's own (router.ts). */
const QBLOCK2: ReadonlySet<number> = new Set([OptionNumber.Q_BLOCK2]);

/** Q-Block2 serving of a file server (RFC 9177), one {@link QBlock2Server} per endpoint. */
export interface QBlock2ServeOptions extends Omit<QBlock2ServerOptions, 'runtime' | 'sender' | 'gate' | 'maxSzx'> {
  /**
   * Who may be sent a burst beyond the first response (RFC 9175 §2.4).
   * Default {@link verifiedGate}: addresses the endpoint verified, others
   * after they answer a CoAP ping within the amplification budget.
   */
  readonly gate?: (endpoint: CoapEndpoint) => (peer: Peer, requestBytes: number) => boolean | Promise<boolean>;
}

/**
 * The Q-Block2 servers of a resolver, made on first use for each endpoint
 * that receives a Q-Block2 request: message IDs, verified addresses and
 * pacing are per endpoint.
 */
export class QBlock2Servers {
  private readonly byEndpoint = new WeakMap<CoapEndpoint, QBlock2Server>();
  private readonly all = new Set<QBlock2Server>();

  constructor(
    private readonly options: QBlock2ServeOptions & Pick<QBlock2ServerOptions, 'runtime' | 'maxSzx'>,
  ) {}

  /** The server for `endpoint`. */
  for(endpoint: CoapEndpoint): QBlock2Server {
    let q = this.byEndpoint.get(endpoint);
    if (q === undefined) {
      const { gate, ...rest } = this.options;
      q = new QBlock2Server({ ...rest, sender: endpointSender(endpoint), gate: (gate ?? verifiedGate)(endpoint) });
      this.byEndpoint.set(endpoint, q);
      this.all.add(q);
    }
    return q;
  }

  /** Bursts tracked over every endpoint. */
  get burstCount(): number {
    let n = 0;
    for (const q of this.all) n += q.burstCount;
    return n;
  }

  /** Stop every burst (the server is closing). */
  close(): void {
    for (const q of this.all) q.close();
  }
}

/** What a file server offers besides the files. */
export interface FileResourceOptions extends Block2ServeOptions {
  /** Accept device reports at /status/<id>, list them at /status. */
  readonly status?: StatusTracker;
  /** Make /files/<path> observable: observers are notified when the file changes. */
  readonly observe?: ObserveRegistry;
  /** Limits of /.well-known/core (cache, per-peer and overall rate of queries). */
  readonly wellKnown?: WellKnownOptions;
  /** Clock for the rate limits. Default the system's. */
  readonly runtime?: Runtime;
  /** More links for `/.well-known/core` (RFC 6690 §4): the resources an embedding application adds, listed first. */
  readonly links?: readonly Link[];
  /** Q-Block2 (RFC 9177) for files, /fw/sha256 and /.well-known/core; `false`: a Q-Block2 request gets 4.02. Default on. */
  readonly qblock2?: QBlock2ServeOptions | false;
}

/** Counters of the file resources, read by metrics at scrape time. */
export interface FileResourceStats {
  /** Block2 (or whole-file) GETs answered from a file. */
  blocks: number;
}

/**
 * How the file server answers a GET for a body, for resources of yours that
 * serve bodies the way files are served: `serve` answers Q-Block2 when asked
 * (with the server's bursts, pacing and Echo gate) and Block2 otherwise;
 * `options` is what such a resource lists in {@link Resource.options} so
 * that the router lets a Q-Block2 request through (undefined when Q-Block2
 * is off).
 */
export interface BodyServing {
  readonly serve: (req: CoapRequest, source: ByteSource) => ResponseSpec | undefined | Promise<ResponseSpec | undefined>;
  readonly options: ReadonlySet<number> | undefined;
}

/** A file repository's resolver, with its /.well-known/core, Q-Block2 servers, body serving and counters for inspection. */
export type FileResolver = Resolver & { readonly wellKnown: WellKnownCore; readonly qblock2: QBlock2Servers | undefined; readonly body: BodyServing; readonly stats: FileResourceStats };

/**
 * How a body is served: Q-Block2 when asked (RFC 9177 §4.4), else Block2
 * (RFC 7959). A Q-Block2 request that reached us without an endpoint (an
 * adapter) gets the 4.02 of a server without Q-Block2 (§4.1).
 */
function bodyServer(qblock2: QBlock2Servers | undefined, block2: Block2ServeOptions): (req: CoapRequest, source: ByteSource) => ResponseSpec | undefined | Promise<ResponseSpec | undefined> {
  return (req, source) => {
    if (!hasQBlock2(req.message)) return serveBlock2(req.message, source, block2);
    if (qblock2 === undefined || req.endpoint === undefined) return errorResponse(Code.BAD_OPTION, 'Q-Block2 is not served here');
    return qblock2.for(req.endpoint).handle(req.message, req.peer, source, req.size);
  };
}

/** Resolver for a file repository's resources. */
export function fileResources(repo: FileRepository, options: FileResourceOptions = {}): FileResolver {
  const { status, observe } = options;
  const stats: FileResourceStats = { blocks: 0 };
  const qblock2 = options.qblock2 === false ? undefined : new QBlock2Servers({ ...options.qblock2, runtime: options.runtime ?? systemRuntime, maxSzx: options.maxSzx });
  const serve = bodyServer(qblock2, options);
  const served = qblock2 === undefined ? undefined : QBLOCK2;
  // A file replaced since it was indexed throws CONTENT_CHANGED: the router
  // answers 5.03 with Max-Age 1 rather than old metadata with new bytes.
  const plainFile = (entry: FileEntry): Resource => ({
    methods: GET_ONLY,
    options: served,
    handle: (req: CoapRequest) => {
      stats.blocks++;
      return serve(req, entry);
    },
  });
  // RFC 9177 §4.5 would make every payload of every notification carry Observe;
  // a Q-Block2 request is served without registering (RFC 7641 §4.1 allows that).
  const observed = (entry: FileEntry): Resource => {
    const inner = observe!.wrap(`files/${entry.path}`, plainFile(entry));
    return { ...inner, options: served, handle: (req) => (hasQBlock2(req.message) ? serve(req, entry) : inner.handle(req)) };
  };
  // One Resource per indexed entry (an entry is immutable: a changed file is a new entry), made on
  // first use and kept as long as the entry: no wrapper objects and closures built per block served.
  const resources = new WeakMap<FileEntry, Resource>();
  const byPath = (entry: FileEntry): Resource => {
    let r = resources.get(entry);
    if (r === undefined) resources.set(entry, (r = observe ? observed(entry) : plainFile(entry)));
    return r;
  };
  const plainResources = new WeakMap<FileEntry, Resource>();
  const byDigest = (entry: FileEntry): Resource => {
    let r = plainResources.get(entry);
    if (r === undefined) plainResources.set(entry, (r = plainFile(entry)));
    return r;
  };
  // /.well-known/core is indexed once per repository change, on demand.
  const extra: Link[] = status ? [{ target: '/status', attributes: { rt: 'coapfw.status', ct: String(ContentFormat.JSON) } }] : [];
  const appLinks = options.links ?? [];
  const core = new WellKnownCore(() => [...appLinks, ...directoryLinks(repo, observe !== undefined), ...extra], options.runtime ?? systemRuntime, options.wellKnown);
  repo.onChange(() => core.invalidate());
  if (observe) {
    repo.onChange((paths) => {
      for (const p of paths) {
        const entry = repo.byRelativePath(p);
        observe.changed(`files/${p}`, entry && plainFile(entry));
      }
    });
  }
  const wellKnown = core.resource(serve, served);
  const resolve: Resolver = (path) => {
    if (path.length === 2 && path[0] === '.well-known' && path[1] === 'core') return wellKnown;
    if (status && path[0] === 'status' && path.length <= 2) return status.resource(path[1]);
    if (path[0] === 'files' && path.length >= 2) {
      // The common case, a file at the top of the directory, builds no array and no string.
      const entry = repo.byRelativePath(path.length === 2 ? path[1]! : path.slice(1).join('/'));
      return entry && byPath(entry);
    }
    if (path.length === 3 && path[0] === 'fw' && path[1] === 'sha256' && /^[0-9a-fA-F]{64}$/.test(path[2]!)) {
      // Content-addressed, hence immutable: nothing to observe (RFC 7641 §1.2), and
      // notifications keyed by path would hand an observer bytes with another digest.
      const entry = repo.bySha256(path[2]!);
      return entry && byDigest(entry);
    }
    return undefined;
  };
  return Object.assign(resolve, { wellKnown: core, qblock2, body: { serve, options: served }, stats });
}

/** The links of every file: by path and by digest, with size and content format. */
export function directoryLinks(repo: FileRepository, observable = false): Link[] {
  const links: Link[] = [];
  for (const f of repo.list()) {
    const path = f.path.split('/').map(encodeURIComponent).join('/');
    const attributes: Record<string, string | true> = { ct: String(ContentFormat.OCTET_STREAM), sz: String(f.size), title: f.path };
    if (observable) attributes.obs = true;
    links.push({ target: `/files/${path}`, attributes });
  }
  for (const f of repo.list()) {
    links.push({ target: `/fw/sha256/${f.sha256}`, attributes: { rt: 'firmware', ct: String(ContentFormat.OCTET_STREAM), sz: String(f.size) } });
  }
  return links;
}

