/**
 * What happens inside coapfw, published on `node:diagnostics_channel`
 * (undici's lib/core/diagnostics.js is the model): a logger, a metrics
 * exporter or a test subscribes to a channel by name; with no subscriber a
 * publish costs one property read (`hasSubscribers`), so the hot paths guard
 * every message they would build with it.
 *
 * | channel | message |
 * |---|---|
 * | `coapfw:request` | `{ peer, method, path }` a request reached a handler |
 * | `coapfw:response` | `{ peer, method, path, code, ms }` the handler answered |
 * | `coapfw:error` | `{ where, error, peer?, path? }` an error a handler or a background task threw (5.00, failed tick) |
 * | `coapfw:retransmission` | `{ peer, attempt }` a CON was sent again |
 * | `coapfw:dtls` | `{ type, peer, identity?, reason? }` handshake done or failed, session closed |
 * | `coapfw:observe` | `{ type: 'register' \| 'deregister', peer, path }` |
 * | `coapfw:report` | `{ deviceId, state, sequence? }` a device's status report was recorded |
 * | `coapfw:publish` | `{ classId, sequence, publisher }` a release was published |
 * | `coapfw:rollout` | `{ rolloutId, step, wave?, reason?, by? }` the rollout engine or an operator changed a rollout |
 *
 * `NODE_DEBUG=coapfw` (util.debuglog) prints every one of them to stderr.
 */
import { channel, type Channel } from 'node:diagnostics_channel';
import { debuglog } from 'node:util';

/** Every channel's name. */
export const CHANNELS = ['request', 'response', 'error', 'retransmission', 'dtls', 'observe', 'report', 'publish', 'rollout'] as const;
/** A channel's short name. */
export type ChannelName = (typeof CHANNELS)[number];

/** The channels, by short name (`diagnostics.rollout.publish(...)`). */
export const diagnostics: Readonly<Record<ChannelName, Channel>> = Object.freeze(
  Object.fromEntries(CHANNELS.map((name) => [name, channel(`coapfw:${name}`)])) as Record<ChannelName, Channel>,
);

/** Publish `message()` on a channel, building it only when someone listens. */
export function publish(name: ChannelName, message: () => object): void {
  const ch = diagnostics[name];
  if (ch.hasSubscribers) ch.publish(message());
}

const debug = debuglog('coapfw');
if (debug.enabled) {
  for (const name of CHANNELS) {
    diagnostics[name].subscribe((message) => debug('%s %s', name, describe(message)));
  }
}

function describe(message: unknown): string {
  try {
    return JSON.stringify(message, (_k, v: unknown) => (v instanceof Error ? { name: v.name, message: v.message, code: (v as { code?: unknown }).code } : typeof v === 'bigint' ? String(v) : v));
  } catch {
    return String(message);
  }
}
