/**
 * What `coapfw gateway` says while it runs: the startup line, the uplink
 * going down and coming back, refusals (envelopes, images) and losses always;
 * cache fills, forwarded reports and discovery with -v; every event with -vv.
 * With --json each is a JSON line on stdout (`{"event": ..., ...}`).
 */
import { codeToString } from '../codec/numbers.js';
import type { GatewayEvent } from '../gateway/options.js';
import { errorJson, jsonLine, type CliIo } from './common.js';

/** The gateway command's log. */
export interface GatewayLog {
  listening(upstream: string, urls: readonly string[], cache: { images: number; bytes: number }, pending: number, memberships: number): void;
  event(e: GatewayEvent): void;
  info(text: string): void;
  warn(text: string): void;
  stopped(): void;
}

/** Level of an event: 0 always shown, 1 with -v, 2 with -vv. */
function level(e: GatewayEvent): number {
  switch (e.type) {
    case 'uplink':
    case 'envelope-refused':
    case 'damaged':
    case 'multicast-error':
      return 0;
    case 'fill-failed':
      return e.reason === 'not-found' ? 1 : 0;
    case 'forwarded':
      return e.outcome === 'rejected' ? 0 : 1;
    case 'fill-started':
    case 'fill-complete':
    case 'fill-stalled':
    case 'evicted':
    case 'refused':
    case 'registration-relayed':
    case 'discovery':
    case 'dtls':
      return 1;
    default:
      return 2;
  }
}

/** One line of text for an event. */
function text(e: GatewayEvent): string {
  switch (e.type) {
    case 'uplink':
      return e.up ? 'uplink back: forwarding queued reports' : `uplink down: ${(e.error as Error)?.message ?? 'no answer'}; reports are queued`;
    case 'envelope-refused':
      return `refused envelope at ${e.where} (${e.reason}${e.relayed ? ', relayed anyway' : ''}): ${e.error.message}`;
    case 'envelope-verified':
      return `verified envelope at ${e.where}: sequence ${e.sequence}`;
    case 'fill-failed':
      return `image ${e.hex.slice(0, 16)}… refused (${e.reason}): ${(e.error as Error)?.message ?? ''}`;
    case 'fill-started':
      return `fetching image ${e.hex.slice(0, 16)}… from upstream`;
    case 'fill-complete':
      return `cached image ${e.hex.slice(0, 16)}… (${e.size} bytes)`;
    case 'fill-stalled':
      return `image ${e.hex.slice(0, 16)}… stalled: ${(e.error as Error)?.message ?? ''}; resumes on the next request`;
    case 'evicted':
      return `dropped image ${e.hex.slice(0, 16)}… (${e.size} bytes) to make room`;
    case 'damaged':
      return `removed ${e.file} from the cache: its bytes are not its name`;
    case 'forwarded':
      return `${e.kind} of ${e.device} forwarded: ${e.outcome} (${codeToString(e.code)})`;
    case 'forward-failed':
      return `forwarding ${e.device} failed: ${(e.error as Error)?.message ?? e.error}`;
    case 'queued':
      return `${e.kind} of ${e.device} queued (#${e.seq}${e.rseq !== undefined ? `, rseq ${e.rseq}` : ''})`;
    case 'registration-relayed':
      return `registration of ${e.device} relayed: ${codeToString(e.code)}`;
    case 'refused':
      return `refused ${e.device ?? 'a device'}: ${e.why}`;
    case 'discovery':
      return `discovery request ${e.answered ? 'answered' : `not answered (${e.why})`}`;
    case 'multicast-error':
      return `multicast: ${(e.error as Error)?.message ?? e.error}`;
    case 'dtls':
      return `dtls ${e.event} ${e.peer}${e.identity !== undefined ? ` identity "${e.identity}"` : e.reason !== undefined ? `: ${e.reason}` : ''}`;
  }
}

/** The JSON of an event: errors as `{code, message}`. */
function json(e: GatewayEvent): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) out[k === 'type' ? 'event' : k] = v instanceof Error ? errorJson(v) : v;
  return out;
}

/** A log for the given output mode. */
export function gatewayLog(io: CliIo, mode: { readonly json: boolean; readonly verbose: number }): GatewayLog {
  const event = (obj: Record<string, unknown>): void => jsonLine(io, { time: new Date().toISOString(), ...obj });
  const err = (t: string): void => void io.stderr.write(`coapfw gateway: ${t}\n`);
  return {
    listening(upstream, urls, cache, pending, memberships) {
      if (mode.json) return event({ event: 'listening', upstream, urls, cache, pending, memberships });
      io.stdout.write(`coapfw: gateway for ${upstream} on ${urls.join(' and ')}; ${cache.images} cached images (${cache.bytes} bytes), ${pending} reports waiting${memberships > 0 ? `, discovery on ${memberships} group memberships` : ''}\n`);
    },
    event(e) {
      if (level(e) > mode.verbose) return;
      if (mode.json) event(json(e));
      else err(text(e));
    },
    info(t) {
      if (mode.json) event({ event: 'info', message: t });
      else err(t);
    },
    warn(t) {
      err(`warning: ${t}`);
      if (mode.json) event({ event: 'warning', message: t });
    },
    stopped() {
      if (mode.json) event({ event: 'stopped' });
    },
  };
}
