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

/** A resource: answers the methods it supports. */
export interface Resource {
  /** Methods this resource answers (request codes); others get 4.05. */
  readonly methods: ReadonlySet<number>;
  /**
   * Critical options this resource processes beyond {@link SERVER_OPTIONS}
   * (e.g. Q-Block2, RFC 9177): a request carrying one to a resource that
   * does not list it gets 4.02, which is how a client learns to fall back
   * (RFC 9177 §4.1: 4.02 from a server, or a resource, without Q-Block2).
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
  return (req) => {
    const msg = req.message;
    // §5.10.2: an endpoint unable or unwilling to act as a forward-proxy
    // answers a request with Proxy-Uri or Proxy-Scheme with 5.05.
    if (hasOption(msg, OptionNumber.PROXY_URI) || hasOption(msg, OptionNumber.PROXY_SCHEME)) {
      return errorResponse(Code.PROXYING_NOT_SUPPORTED, 'this server is not a proxy');
    }
    // Resources decide on the options only some of them process (Q-Block2): recognised here, checked below.
    const bad = badCriticalOptions(msg, RESOURCE_OPTIONS.size === 0 ? known : new Set([...known, ...RESOURCE_OPTIONS]));
    if (bad !== undefined) {
      // §5.4.1: a NON carrying an unrecognised critical option is rejected
      // (§4.3: silently ignored; a Reset is optional and we save it); a CON gets 4.02.
      return msg.type === MessageType.NON ? undefined : bad;
    }
    let path: string[];
    try {
      path = uriPath(msg);
    } catch (e) {
      return toResponse(e);
    }
    if (path.some((s) => s === '..' || s === '.' || s.includes('/') || s.includes('\0'))) {
      return errorResponse(Code.BAD_REQUEST, 'path segments . and .. are not allowed');
    }
    const resource = resolve(path, msg);
    if (resource === undefined) return errorResponse(Code.NOT_FOUND, 'not found');
    if (!resource.methods.has(msg.code)) return errorResponse(Code.METHOD_NOT_ALLOWED, 'method not allowed');
    const unserved = [...RESOURCE_OPTIONS].filter((n) => !known.has(n) && hasOption(msg, n) && !resource.options?.has(n));
    // A CON and a NON alike: the option is recognised, this resource just cannot serve it.
    if (unserved.length > 0) return errorResponse(Code.BAD_OPTION, `option ${unserved.join(', ')} is not supported by this resource`);
    try {
      const r = resource.handle(req);
      return r instanceof Promise ? r.catch(toResponse) : r;
    } catch (e) {
      return toResponse(e);
    }
  };
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
