/**
 * The operator's HTTP server (`coapfw serve --http HOST:PORT`): the fleet
 * page, its JSON API and event stream, and the Prometheus metrics, on
 * node:http alone.
 *
 * Bounded: request bodies (`maxBodyBytes`), event streams (`maxSseClients`),
 * list pages (the store's page size), header and request time (Node's
 * `headersTimeout`/`requestTimeout`). Bound to loopback, it also refuses a
 * `Host` that is not a loopback name, so a web page elsewhere cannot reach
 * it through DNS rebinding.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoapfwError } from '../errors.js';
import { publish } from '../diagnostics.js';
import type { RolloutEngine } from '../service/rollout-engine.js';
import type { Store } from '../service/store.js';
import { apiRoutes } from './api.js';
import { EventHub } from './events.js';
import { createMetrics, type MetricSources } from './metrics.js';
import { sendError, sendJson, type Routes } from './routes.js';
import { servePage } from './static.js';

/** Options of {@link startHttpServer}. */
export interface HttpServerOptions {
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 8080; 0 for any free port. */
  readonly port?: number;
  /** The fleet: without it only /metrics is served (and the page says so). */
  readonly store?: Store;
  readonly engine?: RolloutEngine;
  /** The operator token (see token.ts). */
  readonly token: string;
  /** Counters for /metrics. */
  readonly metrics?: Omit<MetricSources, 'store'>;
  /** Largest request body. Default 64 KiB. */
  readonly maxBodyBytes?: number;
  /** Most open event streams. Default 64. */
  readonly maxSseClients?: number;
  /** One line per request, for `serve -v` (method, path, status, ms). */
  readonly onRequest?: (line: { method: string; path: string; status: number; ms: number; remote: string }) => void;
  /** A handler's unexpected error (answered 500). */
  readonly onError?: (e: unknown) => void;
}

/** A running HTTP server. */
export interface HttpServer {
  readonly server: Server;
  /** `http://host:port`. */
  readonly url: string;
  readonly events: EventHub | undefined;
  close(): Promise<void>;
}

const LOOPBACK_HOSTS = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;
const isLoopback = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\./.test(host);

/** Start the operator's HTTP server. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const host = options.host ?? '127.0.0.1';
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  if (typeof options.token !== 'string' || options.token.length < 16) throw new CoapfwError('INVALID_ARGUMENT', 'http: an operator token of at least 16 characters is required');
  const { store, engine } = options;
  const routes: Routes | undefined = store !== undefined && engine !== undefined ? apiRoutes({ store, engine, token: options.token, maxBodyBytes }) : undefined;
  const events = store === undefined ? undefined : new EventHub(store, { maxClients: options.maxSseClients ?? 64 });
  const registry = createMetrics({ ...options.metrics, ...(store === undefined ? {} : { store }) });
  const checkHost = isLoopback(host);

  const handle = async (req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> => {
    if (checkHost && !LOOPBACK_HOSTS.test(req.headers.host ?? '')) throw new CoapfwError('FORBIDDEN', 'this server answers loopback host names only');
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) {
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : text);
      return;
    }
    if (path === '/api/events' && req.method === 'GET') {
      if (events === undefined) throw new CoapfwError('NOT_FOUND', 'no fleet database: start serve with --db');
      if (!events.attach(res)) throw new CoapfwError('LIMIT_EXCEEDED', 'too many event streams open');
      return;
    }
    if (path.startsWith('/api/')) {
      if (routes === undefined) throw new CoapfwError('NOT_FOUND', 'no fleet database: start serve with --db');
      const m = routes.match(req.method ?? 'GET', path);
      if (m === undefined) throw new CoapfwError('NOT_FOUND', `no such API: ${path.slice(0, 80)}`);
      if (m === 'method') {
        sendJson(res, 405, { error: { code: 'METHOD', message: `${req.method} is not allowed here` } });
        return;
      }
      const result = await m.handler({ req, res, params: m.params, query });
      if (!res.headersSent) sendJson(res, 200, result ?? null);
      return;
    }
    if (!(await servePage(req, res, path))) throw new CoapfwError('NOT_FOUND', 'not found');
  };

  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    const started = performance.now();
    let path = '/';
    let query = new URLSearchParams();
    try {
      const u = new URL(req.url ?? '/', 'http://x');
      path = u.pathname;
      query = u.searchParams;
    } catch {
      // A request line no URL parser takes: answered as not found below.
    }
    res.on('finish', () => options.onRequest?.({ method: req.method ?? '?', path, status: res.statusCode, ms: performance.now() - started, remote: req.socket.remoteAddress ?? '' }));
    handle(req, res, path, query).catch((e: unknown) => {
      if (!(e instanceof CoapfwError)) {
        publish('error', () => ({ where: `http ${req.method} ${path}`, error: e }));
        options.onError?.(e);
      }
      if (res.headersSent) res.destroy();
      else sendError(res, e);
    });
  });
  server.maxHeadersCount = 64;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(e.code === 'EADDRINUSE' ? new CoapfwError('ADDRESS_IN_USE', `http: port ${options.port} on ${host} is in use`, { cause: e }) : new CoapfwError('IO_ERROR', `http: cannot listen on ${host}:${options.port}: ${e.message}`, { cause: e })),
    );
    server.listen(options.port ?? 8080, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  const url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  return {
    server,
    url,
    events,
    async close() {
      events?.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
