/**
 * Request routing for our servers, and the generic request checks that every
 * resource shares: unknown critical options (RFC 7252 §5.4.1), methods.
 */
import type { CoapMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { unknownCriticalOptions, uriPath, validateOptions } from '../codec/options.js';
import type { CoapRequest, RequestHandler, ResponseSpec } from '../messaging/endpoint.js';
import { errorResponse, toResponse } from './responses.js';

/** A resource: answers the methods it supports. */
export interface Resource {
  /** Methods this resource answers (request codes); others get 4.05. */
  readonly methods: ReadonlySet<number>;
  handle(req: CoapRequest): ResponseSpec | Promise<ResponseSpec>;
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

/**
 * Build an endpoint handler from a resolver: checks critical options and
 * methods, maps thrown errors to responses in one place.
 */
export function routeRequests(resolve: Resolver, known: ReadonlySet<number> = SERVER_OPTIONS): RequestHandler {
  return (req) => {
    const msg = req.message;
    const unknown = unknownCriticalOptions(msg, known);
    if (unknown.length > 0) return errorResponse(Code.BAD_OPTION, `unsupported critical option ${unknown.join(', ')}`);
    try {
      // §5.4.5/§5.4.3: a repeated non-repeatable or badly sized critical option is a 4.02.
      validateOptions(msg);
    } catch (e) {
      return toResponse(e);
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
    try {
      const r = resource.handle(req);
      return r instanceof Promise ? r.catch(toResponse) : r;
    } catch (e) {
      return toResponse(e);
    }
  };
}
