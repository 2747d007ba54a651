/**
 * The operator's side over HTTP: the fleet page, its JSON API and event
 * stream, and Prometheus metrics ({@link startHttpServer}); the metrics
 * registry alone ({@link createMetrics}) for a server of your own; the
 * operator token ({@link loadOrCreateToken}, {@link authorized}).
 */
export { startHttpServer, type HttpServer, type HttpServerOptions } from './server.js';
export { createMetrics, type EndpointCounters, type MetricSources } from './metrics.js';
export { EventHub, type EventHubOptions } from './events.js';
export { authorized, loadOrCreateToken, TOKEN_FILE, type OperatorToken } from './token.js';
