/**
 * A small route table on node:http (the API has a dozen routes: a router
 * library would be more code to read than this), JSON bodies read with a
 * size bound, and the one place where errors become HTTP responses.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { CoapfwError, type CoapfwErrorCode } from '../errors.js';

/** A matched request: path parameters and the query. */
export interface HttpContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
}

/** A handler returns a JSON value (sent with 200), or undefined when it answered itself. */
export type HttpHandler = (ctx: HttpContext) => unknown | Promise<unknown>;

interface Route {
  readonly method: string;
  readonly segments: readonly string[];
  readonly handler: HttpHandler;
}

/** Routes matched by method and path segments; `:name` matches one segment. */
export class Routes {
  private readonly routes: Route[] = [];

  add(method: string, pattern: string, handler: HttpHandler): this {
    this.routes.push({ method, segments: pattern.split('/').filter(Boolean), handler });
    return this;
  }

  /** The handler and parameters for a request, 'method' when only the method is wrong, or undefined. */
  match(method: string, path: string): { handler: HttpHandler; params: Record<string, string> } | 'method' | undefined {
    const parts = path.split('/').filter(Boolean);
    let wrongMethod = false;
    for (const r of this.routes) {
      const params = matchSegments(r.segments, parts);
      if (params === undefined) continue;
      if (r.method === method || (r.method === 'GET' && method === 'HEAD')) return { handler: r.handler, params };
      wrongMethod = true;
    }
    return wrongMethod ? 'method' : undefined;
  }
}

function matchSegments(pattern: readonly string[], parts: readonly string[]): Record<string, string> | undefined {
  if (pattern.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    let part: string;
    try {
      part = decodeURIComponent(parts[i]!);
    } catch {
      return undefined;
    }
    if (p.startsWith(':')) params[p.slice(1)] = part;
    else if (p !== part) return undefined;
  }
  return params;
}

/** Read a JSON body of at most `maxBytes`; TOO_LARGE past it, INVALID_ARGUMENT when it is not JSON. */
export async function readJson(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > maxBytes) throw new CoapfwError('TOO_LARGE', `request body: ${length} bytes exceed the limit of ${maxBytes}`);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) {
      req.destroy();
      throw new CoapfwError('TOO_LARGE', `request body: more than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  if (total === 0) return {};
  if (!/^application\/json\b/i.test(type)) throw new CoapfwError('INVALID_ARGUMENT', `request body: expected application/json, got '${type}'`);
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (e) {
    throw new CoapfwError('INVALID_ARGUMENT', `request body: not JSON (${(e as Error).message})`, { cause: e });
  }
}

const STATUS_FOR: Partial<Record<CoapfwErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  ALREADY_EXISTS: 409,
  TOO_LARGE: 413,
  LIMIT_EXCEEDED: 503,
};

/** The HTTP status for an error a handler threw (500 for anything that is not ours). */
export function statusFor(e: unknown): number {
  return e instanceof CoapfwError ? (STATUS_FOR[e.code] ?? 500) : 500;
}

/** Send a JSON value. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

/** An error as `{ error: { code, message } }`; the message of an error that is not ours is not shown. */
export function sendError(res: ServerResponse, e: unknown): void {
  const status = statusFor(e);
  const error = e instanceof CoapfwError && status !== 500 ? { code: e.code, message: e.message } : { code: 'INTERNAL', message: 'internal error (see the server log)' };
  sendJson(res, status, { error }, status === 401 ? { 'www-authenticate': 'Bearer realm="coapfw"' } : {});
}
