/**
 * What `coapfw serve` says while it runs: the startup line and file changes
 * on stdout, warnings and errors on stderr, DTLS sessions and device reports
 * with -v. With --json every one of them is a JSON line on stdout
 * (`{"event": "listening" | "files" | "dtls" | "status" | "warning" | "error" | "stopped", ...}`),
 * errors and warnings also as text on stderr.
 */
import type { DeviceStatus } from '../server/status.js';
import type { DtlsServerEvent } from '../transport/dtls/server.js';
import type { Peer } from '../core/transport.js';
import { errorJson, jsonLine, type CliIo } from './common.js';

/** The serve command's log. */
/** What the startup line says about the update service, when it runs. */
export interface ServiceSummary {
  readonly db: string;
  readonly backend: string;
  readonly publishKeys: number;
  readonly openRegistration: boolean;
}

export interface ServeLog {
  /** `udp`: which socket carries CoAP and coaps (coapfw's native one, or node:dgram); said in --json. */
  listening(files: number, root: string, urls: readonly string[], service?: ServiceSummary, udp?: 'native' | 'dgram'): void;
  files(count: number, changed: readonly string[]): void;
  dtls(e: DtlsServerEvent): void;
  report(s: DeviceStatus): void;
  info(text: string): void;
  warn(text: string): void;
  error(e: unknown): void;
  /** Any other event at a level: one JSON line `{time, level, event, ...fields}`, or `text` on stderr. */
  event(level: LogLevel, event: string, fields: Record<string, unknown>, text: string): void;
  stopped(): void;
}

/** Levels of {@link ServeLog.event}: `error` and `warn` always, `info` with -v, `debug` with -vv. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** `scheme://host:port` with IPv6 literals in brackets. */
export function url(scheme: string, a: Peer): string {
  return `${scheme}://${a.address.includes(':') ? `[${a.address}]` : a.address}:${a.port}`;
}

/** Most changed names listed in one text line. */
const LIST_MAX = 5;

/** A log for the given output mode. */
export function serveLog(io: CliIo, mode: { readonly json: boolean; readonly verbose: number }): ServeLog {
  const event = (obj: Record<string, unknown>): void => jsonLine(io, { time: new Date().toISOString(), ...obj });
  const out = (text: string): void => void io.stdout.write(`coapfw: ${text}\n`);
  const err = (text: string): void => void io.stderr.write(`coapfw serve: ${text}\n`);
  return {
    listening(files, root, urls, service, udp) {
      if (mode.json) return event({ event: 'listening', files, root, urls, ...(udp ? { udp } : {}), ...(service ? { service } : {}) });
      out(`serving ${files} files from ${root} on ${urls.join(' and ')}`);
      if (service === undefined) return;
      const publishing = service.publishKeys > 0 ? `${service.publishKeys} publish key(s)` : 'no --trust: publishing is off';
      const devices = service.openRegistration ? 'plain CoAP too (open registration: unauthenticated)' : 'coaps only';
      out(`update service on ${service.db} (${service.backend}); ${publishing}; devices over ${devices}`);
    },
    files(count, changed) {
      if (mode.json) return event({ event: 'files', files: count, changed });
      const list = changed.slice(0, LIST_MAX).join(', ') + (changed.length > LIST_MAX ? `, and ${changed.length - LIST_MAX} more` : '');
      out(`serving ${count} files (${changed.length} changed: ${list})`);
    },
    dtls(e) {
      if (mode.verbose < 1) return;
      const detail = e.type === 'established' ? { identity: e.identity } : e.type === 'internal-error' ? { reason: String(e.error) } : { reason: e.reason };
      if (mode.json) return event({ event: 'dtls', type: e.type, peer: url('coaps', e.peer), ...detail });
      const what = 'identity' in detail ? `identity "${detail.identity}"` : detail.reason;
      err(`dtls ${e.type} ${url('coaps', e.peer)}: ${what}`);
    },
    report(s) {
      if (mode.verbose < 1) return;
      if (mode.json) return event({ event: 'status', device: s.device, from: s.from, report: s.report });
      err(`status ${s.device} from ${s.from}: ${JSON.stringify(s.report)}`);
    },
    info(text) {
      if (mode.json) event({ event: 'info', message: text });
      else err(text);
    },
    warn(text) {
      err(`warning: ${text}`);
      if (mode.json) event({ event: 'warning', message: text });
    },
    error(e) {
      err((e as Error)?.message ?? String(e));
      if (mode.json) event({ event: 'error', error: errorJson(e) });
    },
    event(level, name, fields, text) {
      if (mode.json) event({ level, event: name, ...fields });
      else err(level === 'error' || level === 'warn' ? `${level}: ${text}` : text);
    },
    stopped() {
      if (mode.json) event({ event: 'stopped' });
    },
  };
}
