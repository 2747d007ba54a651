/**
 * The operator's side of `coapfw serve`: the HTTP server (`--http`: fleet
 * page, JSON API, metrics), the operator token in the state directory, and
 * the log of what the library publishes on its diagnostics channels at the
 * levels of -v and -vv. Kept apart from serve.ts so that the command stays a
 * thin list of steps.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { ChannelName } from '../diagnostics.js';
import { startHttpServer, type HttpServer } from '../http/server.js';
import type { MetricSources } from '../http/metrics.js';
import { loadOrCreateToken } from '../http/token.js';
import type { RolloutEngine } from '../service/rollout-engine.js';
import type { Store } from '../service/store.js';
import { intOption, str, type Values } from './args.js';
import { UsageError } from './common.js';
import type { LogLevel, ServeLog } from './serve-log.js';

/** serve's options for the operator's side (also config file keys). */
export const OPS_OPTIONS = {
  config: { type: 'string' },
  http: { type: 'string' },
  'state-dir': { type: 'string' },
  'log-json': { type: 'boolean' },
  'http-max-body': { type: 'string' },
  'http-max-streams': { type: 'string' },
  'max-observers': { type: 'string' },
  'max-requests': { type: 'string' },
  'max-dtls-sessions': { type: 'string' },
} as const;

/** The CoAP server's limits from `--max-observers`, `--max-requests`, `--max-dtls-sessions` (each a safe default when absent). */
export function serverLimits(values: Values): {
  observe?: { maxObservers: number };
  endpoint?: { maxConcurrentRequests: number };
  dtls?: { maxSessions: number };
} {
  const observers = intOption('max-observers', values['max-observers'], 0, 1_000_000);
  const requests = intOption('max-requests', values['max-requests'], 1, 1_000_000);
  const sessions = intOption('max-dtls-sessions', values['max-dtls-sessions'], 1, 1_000_000);
  return {
    ...(observers === undefined ? {} : { observe: { maxObservers: observers } }),
    ...(requests === undefined ? {} : { endpoint: { maxConcurrentRequests: requests } }),
    ...(sessions === undefined ? {} : { dtls: { maxSessions: sessions } }),
  };
}

/** The help text of those options. */
export const OPS_HELP = `  --config FILE         options from a TOML (.toml) or JSON (.json) file, same
                        names as the flags; flags override it
  --http HOST:PORT      the fleet page, JSON API and /metrics over HTTP (off by
                        default; HOST defaults to 127.0.0.1: --http 8080)
  --state-dir DIR       where the operator token is kept (default
                        $XDG_STATE_HOME/coapfw or ~/.local/state/coapfw)
  --http-max-body N     largest HTTP request body in bytes (default 65536)
  --http-max-streams N  most open event streams of the page (default 64)
  --max-observers N     Observe registrations held at once (default 1000)
  --max-requests N      CoAP requests in progress at once, per endpoint; more
                        get 5.03 (default 4096)
  --max-dtls-sessions N DTLS sessions, handshakes included (default 1000)
  --log-json            log as JSON lines on stdout (same as --json)
  -v, -vv               -v: DTLS sessions, reports, publishing, rollout steps,
                        operator actions; -vv: every CoAP and HTTP request
`;

/** `--http 8080`, `--http 127.0.0.1:8080`, `--http [::1]:8080`, `--http :8080` (all addresses). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value) ?? /^()()(\d{1,5})$/.exec(value);
  if (m === null) throw new UsageError(`--http: expected [HOST:]PORT, got '${value}'`);
  const port = intOption('http', m[3], 0, 65535)!;
  // A bare PORT is loopback; ':PORT' every address; both empty captures of the patterns above mean 'no host'.
  const host = m[1] || m[2] || (value.startsWith(':') ? '::' : '127.0.0.1');
  return { host, port };
}

/** The default state directory (XDG Base Directory: state data). */
export function defaultStateDir(): string {
  const xdg = process.env.XDG_STATE_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.local', 'state'), 'coapfw');
}

/** What the operator's side needs from the running server. */
export interface OpsContext {
  readonly values: Values;
  readonly log: ServeLog;
  readonly verbose: number;
  readonly metrics: Omit<MetricSources, 'store'>;
  /** Where the token lives without --state-dir (serve's: next to its default database). */
  readonly stateDir?: string;
  readonly store?: Store;
  readonly engine?: RolloutEngine;
}

/** Start the HTTP server (with --http) and the diagnostics log; returns stop. */
export async function startOps(ctx: OpsContext): Promise<{ http: HttpServer | undefined; close(): Promise<void> }> {
  const stopLog = logDiagnostics(ctx.log, ctx.verbose);
  const listen = str(ctx.values, 'http');
  if (listen === undefined) return { http: undefined, close: async () => stopLog() };
  const { host, port } = parseListen(listen);
  const stateDir = str(ctx.values, 'state-dir') ?? ctx.stateDir ?? defaultStateDir();
  const token = await loadOrCreateToken(stateDir);
  const http = await startHttpServer({
    host,
    port,
    token: token.token,
    ...(ctx.store === undefined ? {} : { store: ctx.store }),
    ...(ctx.engine === undefined ? {} : { engine: ctx.engine }),
    metrics: ctx.metrics,
    maxBodyBytes: intOption('http-max-body', ctx.values['http-max-body'], 1024, 16 * 1024 * 1024) ?? 64 * 1024,
    maxSseClients: intOption('http-max-streams', ctx.values['http-max-streams'], 1, 10_000) ?? 64,
    onRequest: (r) => {
      const level: LogLevel = r.status >= 500 ? 'error' : r.method !== 'GET' && r.method !== 'HEAD' ? 'info' : 'debug';
      if (levelShown(level, ctx.verbose)) ctx.log.event(level, 'http', r, `http ${r.method} ${r.path} ${r.status} ${r.ms.toFixed(1)} ms from ${r.remote}`);
    },
    onError: (e) => ctx.log.error(e),
  });
  ctx.log.event('info', 'http', { url: http.url, token: token.created ? token.token : undefined, tokenFile: token.path }, `fleet page and metrics on ${http.url}`);
  if (token.created) ctx.log.event('warn', 'token', { tokenFile: token.path, token: token.token }, `operator token (also in ${token.path}, mode 0600): ${token.token}`);
  if (ctx.store === undefined) ctx.log.warn('no fleet database: the page shows no devices (start with --db); /metrics works');
  return {
    http,
    async close() {
      await http.close();
      stopLog();
    },
  };
}

const ORDER: Record<LogLevel, number> = { error: 0, warn: 0, info: 1, debug: 2 };
const levelShown = (level: LogLevel, verbose: number): boolean => ORDER[level] <= verbose;

/** Which level each channel logs at, and its text line. */
const CHANNEL_LOG: Partial<Record<ChannelName, { level: (m: Record<string, unknown>) => LogLevel; text: (m: Record<string, unknown>) => string }>> = {
  error: { level: () => 'error', text: (m) => `${String(m.where)}: ${errorText(m.error)}${m.peer ? ` (${String(m.peer)})` : ''}` },
  response: {
    level: (m) => ((m.code as number) >> 5 === 5 ? 'info' : 'debug'),
    text: (m) => `coap ${methodName(m.method as number)} ${String(m.path)} ${codeText(m.code as number)} ${(m.ms as number).toFixed(1)} ms from ${String(m.peer)}`,
  },
  retransmission: { level: () => 'debug', text: (m) => `retransmission ${String(m.attempt)} to ${String(m.peer)}` },
  observe: { level: () => 'debug', text: (m) => `observe ${String(m.type)} ${String(m.path)} by ${String(m.peer)}` },
  // coapfw:report and coapfw:publish: the service logs those itself (serve-service.ts logServiceEvent).
  rollout: { level: () => 'info', text: (m) => `rollout ${String(m.rolloutId)}: ${String(m.step ?? m.type)}${m.wave === undefined ? '' : ` wave ${String(m.wave)}`}${m.reason ? `: ${String(m.reason)}` : ''}${m.by ? ` by ${String(m.by)}` : ''}` },
};

/** Subscribe the log to the coapfw:* channels it shows at this verbosity; returns unsubscribe. */
export function logDiagnostics(log: ServeLog, verbose: number): () => void {
  const subs: Array<[string, (m: unknown) => void]> = [];
  for (const [name, how] of Object.entries(CHANNEL_LOG) as Array<[ChannelName, NonNullable<(typeof CHANNEL_LOG)[ChannelName]>]>) {
    // A channel whose every line is above the verbosity gets no subscriber: the library then skips building its messages.
    if ((name === 'response' || name === 'retransmission' || name === 'observe') && verbose < 2) continue;
    if (name === 'rollout' && verbose < 1) continue;
    const listener = (message: unknown): void => {
      const m = message as Record<string, unknown>;
      const level = how.level(m);
      if (!levelShown(level, verbose)) return;
      log.event(level, name, name === 'error' ? { ...m, error: errorText(m.error) } : m, how.text(m));
    };
    subscribe(`coapfw:${name}`, listener);
    subs.push([`coapfw:${name}`, listener]);
  }
  return () => {
    for (const [name, listener] of subs) unsubscribe(name, listener);
  };
}

function errorText(e: unknown): string {
  if (e instanceof Error) return `${e.message}${(e as { code?: unknown }).code ? ` [${String((e as { code?: unknown }).code)}]` : ''}`;
  return String(e);
}

const METHODS = ['EMPTY', 'GET', 'POST', 'PUT', 'DELETE', 'FETCH', 'PATCH', 'iPATCH'];
const methodName = (c: number): string => METHODS[c] ?? String(c);
const codeText = (c: number): string => `${c >> 5}.${String(c & 31).padStart(2, '0')}`;
