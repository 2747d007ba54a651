/**
 * Request routing for our servers, and the generic request checks that every
 * resource shares: proxy requests (RFC 7252 §5.10.2), unknown critical
 * options (§5.4.1), methods. No-Response (RFC 7967) is honoured by the
 * endpoint (messaging/no-response.ts), for every response it sends.
 */
import type { CoapMessage } from '../codec/message.js';
import { Code, MessageType, OptionNumber } from '../codec/numbers.js';
import { hasOption, unknownCriticalOptions, uriPath, validateOptions } from '../codec/options.js';
import type { CoapRequest, RequestHandler, ResponseSpec } from '../messaging/endpoint.js';
import { CoapfwError } from '../errors.js';
import { errorResponse, toResponse } from './responses.js';
import { diagnostics, publish } from '../diagnostics.js';
import { peerKey } from '../core/transport.js';

/** A resource: answers the methods it supports. */
export interface Resource {
  /** Methods this resource answers (request codes); others get 4.05. */
  readonly methods: ReadonlySet<number>;
  /**
   * Critical options this resource processes beyond the server's own
   * ({@link SERVER_OPTIONS}): Block1 and Size1 on resources that take bodies
   * (withBlock1), Accept on those that answer in several formats, Q-Block2
   * (RFC 9177) on those that serve it. Everywhere else such an option draws
   * 4.02 (RFC 7252 §5.4.1), which for Q-Block2 is how a client learns to
   * fall back (RFC 9177 §4.1).
   */
  readonly options?: ReadonlySet<number>;
  /** The response; undefined for none (see RequestHandler), e.g. to an address that never proved it exists. */
  handle(req: CoapRequest): ResponseSpec | undefined | Promise<ResponseSpec | undefined>;
}

/** Finds the resource for a path, or undefined (4.04). */
export type Resolver = (path: readonly string[], req: CoapMessage) => Resource | undefined;

/** Options this server understands; an unknown critical one gets 4.02 (§5.4.1). */
// Only what our resources really process: a client sending If-Match, If-None-Match,
// Accept or Block1 (all critical) must get 4.02 rather than have them silently ignored.
export const SERVER_OPTIONS: ReadonlySet<number> = new Set([
  OptionNumber.URI_HOST,
  OptionNumber.ETAG,
  OptionNumber.OBSERVE,
  OptionNumber.URI_PORT,
  OptionNumber.URI_PATH,
  OptionNumber.CONTENT_FORMAT,
  OptionNumber.URI_QUERY,
  OptionNumber.BLOCK2,
  OptionNumber.SIZE2,
  OptionNumber.SIZE1,
  OptionNumber.ECHO,
  OptionNumber.NO_RESPONSE,
  OptionNumber.REQUEST_TAG,
]);

/** Critical options that some resources process and others refuse (with 4.02): Q-Block2 (RFC 9177). */
const RESOURCE_OPTIONS: ReadonlySet<number> = new Set([OptionNumber.Q_BLOCK2]);

/**
 * Build an endpoint handler from a resolver: checks critical options and
 * methods, maps thrown errors to responses in one place.
 */
export function routeRequests(resolve: Resolver, known: ReadonlySet<number> = SERVER_OPTIONS): RequestHandler {
  const route = router(resolve, known);
  // Tracing costs two property reads per request while nobody subscribes (src/diagnostics.ts).
  return (req) => (diagnostics.request.hasSubscribers || diagnostics.response.hasSubscribers ? traced(route, req) : route(req));
}

/** Run `route` publishing coapfw:request before and coapfw:response after. */
function traced(route: RequestHandler, req: CoapRequest): ReturnType<RequestHandler> {
  const started = performance.now();
  const msg = req.message;
  let path = '';
  try {
    path = `/${uriPath(msg).join('/')}`;
  } catch {
    path = '(bad path)';
  }
  const peer = peerKey(req.peer);
  publish('request', () => ({ peer, method: msg.code, path }));
  const done = (spec: ResponseSpec | undefined): ResponseSpec | undefined => {
    publish('response', () => ({ peer, method: msg.code, path, code: spec?.code ?? 0, ms: performance.now() - started }));
    return spec;
  };
  const r = route(req);
  return r instanceof Promise ? r.then(done) : done(r);
}

/** A thrown error as a response; one that becomes a 5.xx is published on coapfw:error (a 4.xx is the client's, seen in its response). */
function failed(e: unknown, req: CoapRequest): ResponseSpec {
  const spec = toResponse(e);
  if (spec.code >> 5 === 5) publish('error', () => ({ where: 'handler', error: e, peer: peerKey(req.peer), code: spec.code }));
  return spec;
}

function router(resolve: Resolver, known: ReadonlySet<number>): RequestHandler {
  return (req) => {
    const msg = req.message;
    // §5.10.2: an endpoint unable or unwilling to act as a forward-proxy
    // answers a request with Proxy-Uri or Proxy-Scheme with 5.05.
    if (hasOption(msg, OptionNumber.PROXY_URI) || hasOption(msg, OptionNumber.PROXY_SCHEME)) {
      return errorResponse(Code.PROXYING_NOT_SUPPORTED, 'this server is not a proxy');
    }
    let path: string[];
    try {
      path = uriPath(msg);
    } catch (e) {
      return msg.type === MessageType.NON ? undefined : toResponse(e);
    }
    // The resource is found first, so that the options it processes count as known; the options only
    // some resources process (Q-Block2) are recognised here, and refused below by one that does not.
    const unsafe = path.some(unsafeSegment);
    const resource = unsafe ? undefined : resolve(path, msg);
    const bad = badCriticalOptions(msg, union(resource?.options === undefined ? known : union(known, resource.options), RESOURCE_OPTIONS));
    if (bad !== undefined) {
      // §5.4.1: a NON carrying an unrecognised critical option is rejected
      // (§4.3: silently ignored; a Reset is optional and we save it); a CON gets 4.02.
      return msg.type === MessageType.NON ? undefined : bad;
    }
    if (unsafe) return errorResponse(Code.BAD_REQUEST, 'path segments . and .. are not allowed');
    if (resource === undefined) return errorResponse(Code.NOT_FOUND, 'not found');
    if (!resource.methods.has(msg.code)) return errorResponse(Code.METHOD_NOT_ALLOWED, 'method not allowed');
    const unserved = unservedOption(msg, known, resource);
    // A CON and a NON alike: the option is recognised, this resource just cannot serve it.
    if (unserved !== undefined) return errorResponse(Code.BAD_OPTION, `option ${unserved} is not supported by this resource`);
    try {
      const r = resource.handle(req);
      return r instanceof Promise ? r.catch((e: unknown) => failed(e, req)) : r;
    } catch (e) {
      return failed(e, req);
    }
  };
}

/** The first option of {@link RESOURCE_OPTIONS} in `msg` that neither the server nor `resource` processes. */
function unservedOption(msg: CoapMessage, known: ReadonlySet<number>, resource: Resource): number | undefined {
  // Runs once per request: a loop over the options, no arrays built.
  for (const o of msg.options) {
    if (RESOURCE_OPTIONS.has(o.number) && !known.has(o.number) && !resource.options?.has(o.number)) return o.number;
  }
  return undefined;
}

const unsafeSegment = (s: string): boolean => s === '..' || s === '.' || s.includes('/') || s.includes('\0');

/** Known options plus a resource's own, cached per resource option set. */
const unions = new WeakMap<ReadonlySet<number>, WeakMap<ReadonlySet<number>, ReadonlySet<number>>>();
function union(known: ReadonlySet<number>, extra: ReadonlySet<number>): ReadonlySet<number> {
  let byKnown = unions.get(extra);
  if (byKnown === undefined) unions.set(extra, (byKnown = new WeakMap()));
  let u = byKnown.get(known);
  if (u === undefined) byKnown.set(known, (u = new Set([...known, ...extra])));
  return u;
}

/**
 * The 4.02 for a request with a critical option we do not process, or with
 * one that §5.4.3 (bad length) and §5.4.5 (repeated) say to treat like one.
 */
function badCriticalOptions(msg: CoapMessage, known: ReadonlySet<number>): ResponseSpec | undefined {
  const unknown = unknownCriticalOptions(msg, known);
  if (unknown.length > 0) return errorResponse(Code.BAD_OPTION, `unsupported critical option ${unknown.join(', ')}`);
  try {
    validateOptions(msg);
  } catch (e) {
    return toResponse(e);
  }
  return undefined;
}

/**
 * A resolver for a fixed table of resources keyed by path (`'sensors/temp'`,
 * no leading slash): exact matches only.
 *
 * @example
 * const mine = resourceTable({ time: { methods: new Set([Code.GET]), handle: () => ({ code: Code.CONTENT, payload }) } });
 */
export function resourceTable(table: Readonly<Record<string, Resource>>): Resolver {
  const byPath = new Map<string, Resource>();
  for (const [key, resource] of Object.entries(table)) {
    const path = key.replace(/^\/+/, '');
    if (path === '' || path.split('/').some((s) => s === '' || s === '.' || s === '..')) {
      throw new CoapfwError('INVALID_ARGUMENT', `resources: '${key}' is not a path like 'a/b'`, { path: key });
    }
    if (typeof resource?.handle !== 'function' || !(resource.methods instanceof Set)) {
      throw new CoapfwError('INVALID_ARGUMENT', `resources: '${key}' needs methods (a Set of request codes) and handle()`, { path: key });
    }
    byPath.set(path, resource);
  }
  return (path) => byPath.get(path.join('/'));
}

/** Ask each resolver in turn; the first that knows the path answers it. */
export function firstResolver(...resolvers: readonly Resolver[]): Resolver {
  return (path, req) => {
    for (const r of resolvers) {
      const found = r(path, req);
      if (found !== undefined) return found;
    }
    return undefined;
  };
}
