/**
 * Passing one request on to a server and its answer back (RFC 7252 §5.7):
 * which options go on, which stay (hop-by-hop), and what the device is told
 * when the server cannot be reached.
 *
 * Request options the gateway consumes or handles itself and never forwards:
 * Proxy-Uri, Proxy-Scheme, Uri-Host/Port/Path/Query (replaced by the
 * target's, with Uri-Host for a host name, §6.4 step 5), Block1/Size1 and
 * Request-Tag (the gateway reassembles bodies itself, RFC 7959 §2.10, RFC 9175
 * §3), Observe (a GET with Observe goes to the Observe relay,
 * observe-relay.ts, which registers upstream itself; a request forwarded
 * here gets an answer without Observe, so the device knows it is not
 * registered, RFC 7641 §3.1), No-Response and Echo (between the
 * device and the gateway, RFC 7967, RFC 9175 §2.3). Everything else goes
 * on, options this gateway does not know included when they are
 * safe-to-forward; an unknown unsafe one is 4.02 (§5.7.1). From the answer,
 * the options of those same mechanisms are dropped.
 *
 * No answer in time is 5.04 Gateway Timeout (§5.9.3.5); a server that cannot
 * be reached or talked to (ICMP unreachable, a failed DTLS handshake) 5.02
 * Bad Gateway (§5.9.3.3).
 */
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, codeToString, isUnsafe, OptionNumber } from '../codec/numbers.js';
import { OPTION_DEFINITIONS, stringOption } from '../codec/options.js';
import type { CoapClient } from '../client/open.js';
import type { CoapUri } from '../codec/uri.js';
import type { RequestSpec, Requester } from '../core/request.js';
import { isIP } from 'node:net';
import { isCoapfwError } from '../errors.js';
import type { ResponseSpec } from '../messaging/endpoint.js';
import type { ResponseStream, StreamListener } from '../messaging/response-stream.js';
import { errorResponse } from '../server/responses.js';
import { originOf, type OriginPool, type Uplink } from './upstream.js';

const N = OptionNumber;

/** Request options never forwarded (see the module comment). */
const REQUEST_HOP: ReadonlySet<number> = new Set([
  N.URI_HOST, N.URI_PORT, N.URI_PATH, N.URI_QUERY, N.PROXY_URI, N.PROXY_SCHEME, N.OBSERVE, N.NO_RESPONSE, N.ECHO, N.REQUEST_TAG, N.BLOCK1, N.SIZE1, N.Q_BLOCK1, N.Q_BLOCK2,
]);
/** Response options never relayed back. */
const RESPONSE_HOP: ReadonlySet<number> = new Set([N.OBSERVE, N.ECHO, N.REQUEST_TAG, N.BLOCK1, N.SIZE1, N.Q_BLOCK1, N.Q_BLOCK2]);
/** Options the relay understands; any other unsafe one is 4.02 (RFC 7252 §5.7.1). */
const UNDERSTOOD: ReadonlySet<number> = new Set([...OPTION_DEFINITIONS.keys()].filter((n) => n !== N.Q_BLOCK1 && n !== N.Q_BLOCK2));

/** Where a request goes: an origin and the path and query there. */
export interface Target {
  readonly uri: CoapUri;
  /** `scheme://host:port`, the key of its client. */
  readonly origin: string;
}

/** A target from a parsed URI. */
export function targetOf(uri: CoapUri): Target {
  return { uri, origin: originOf(uri) };
}

/** What relaying needs: the clients, and the uplink state of the configured upstream. */
export interface RelayContext {
  readonly pool: OriginPool;
  /** The configured upstream's origin, whose exchanges move {@link RelayContext.uplink}. */
  readonly upstreamOrigin: string;
  readonly uplink: Uplink;
  /** How long to wait for an answer (after the CON was acknowledged, or for a NON). Default 10,000 ms. */
  readonly responseTimeoutMs?: number;
}

/** The 4.02 for an unsafe option the gateway does not understand (§5.7.1), or undefined. */
export function unsafeUnknown(msg: CoapMessage): ResponseSpec | undefined {
  const bad = msg.options.find((o) => isUnsafe(o.number) && !UNDERSTOOD.has(o.number));
  return bad === undefined ? undefined : errorResponse(Code.BAD_OPTION, `option ${bad.number} is unsafe to forward and not understood by this proxy`);
}

/** What identifies a representation at `t` (RFC 7252 §5.6: the request URI and, as a cache key, the Accept option). */
export function resourceKey(t: Target, accept: Uint8Array | undefined): string {
  return `${t.origin}/${t.uri.path.join('/')}?${t.uri.query.join('&')}#${accept === undefined ? '' : Buffer.from(accept).toString('hex')}`;
}

/** The target's Uri-Host (for a host name, not an IP literal: RFC 7252 §6.4 step 5), Uri-Path and Uri-Query options. */
export function targetOptions(t: Target): CoapOption[] {
  const out: CoapOption[] = [];
  if (isIP(t.uri.host) === 0) out.push(stringOption(N.URI_HOST, t.uri.host));
  for (const s of t.uri.path) out.push(stringOption(N.URI_PATH, s));
  for (const q of t.uri.query) out.push(stringOption(N.URI_QUERY, q));
  return out;
}

/** The device's options that go on to the server (target options first). */
export function forwardedOptions(msg: CoapMessage, t: Target): CoapOption[] {
  return [...targetOptions(t), ...msg.options.filter((o) => !REQUEST_HOP.has(o.number))];
}

/** The server's answer as the device gets it. */
export function relayed(res: CoapMessage): ResponseSpec {
  return { code: res.code, options: res.options.filter((o) => !RESPONSE_HOP.has(o.number)), payload: res.payload };
}

/** What to tell the device when the exchange with the server failed. */
export function upstreamFailure(e: unknown, t: Target): ResponseSpec {
  if (isCoapfwError(e, 'TIMEOUT')) return errorResponse(Code.GATEWAY_TIMEOUT, `${t.origin}: no answer in time`);
  if (isCoapfwError(e, 'RESPONSE_CODE') && e.responseCode !== undefined) return errorResponse(Code.BAD_GATEWAY, `${t.origin}: ${codeToString(e.responseCode)}`);
  const why = e instanceof Error ? e.message : String(e);
  return errorResponse(Code.BAD_GATEWAY, `${t.origin}: ${why}`);
}

/** One exchange with `t`'s server, moving the uplink state when it is the configured upstream. */
export function exchange(ctx: RelayContext, t: Target, spec: RequestSpec): Promise<CoapMessage> {
  return track(ctx, t, () => ctx.pool.with(t.origin, (client) => client.request(spec, { responseTimeoutMs: ctx.responseTimeoutMs ?? 10_000 })));
}

/** Opens a Q-Block2 response stream to a target (see {@link requesterFor}). */
export type StreamOpener = (listener: StreamListener) => ResponseStream;

/**
 * Run `fn` with a requester bound to `t` (for the block-wise fetcher), each
 * request tracked like {@link exchange}, and a stream opener for Q-Block2
 * whose responses count as answers and whose failed CONs as failures.
 */
export async function requesterFor<T>(ctx: RelayContext, t: Target, fn: (request: Requester, openStream: StreamOpener) => Promise<T>): Promise<T> {
  try {
    return await ctx.pool.with(t.origin, (client) =>
      fn(
        (spec, ro) => track(ctx, t, () => client.request(spec, { ...ro, responseTimeoutMs: ro.responseTimeoutMs ?? ctx.responseTimeoutMs ?? 10_000 })),
        (listener) => trackedStream(ctx, t, client, listener),
      ),
    );
  } catch (e) {
    if (t.origin === ctx.upstreamOrigin) ctx.uplink.failed(e); // also a client that could not be opened
    throw e;
  }
}

/** A response stream of `client` whose responses count as the upstream answering and whose failed CONs as failures (when `t` is the upstream). */
export function trackedStream(ctx: RelayContext, t: Target, client: Pick<CoapClient, 'openStream'>, listener: StreamListener): ResponseStream {
  const mine = t.origin === ctx.upstreamOrigin;
  return client.openStream({
    onResponse: (msg) => {
      if (mine) ctx.uplink.answered();
      listener.onResponse(msg);
    },
    onError: (e) => {
      if (mine) ctx.uplink.failed(e);
      listener.onError?.(e);
    },
  });
}

async function track(ctx: RelayContext, t: Target, fn: () => Promise<CoapMessage>): Promise<CoapMessage> {
  const mine = t.origin === ctx.upstreamOrigin;
  try {
    const res = await fn();
    if (mine) ctx.uplink.answered();
    return res;
  } catch (e) {
    if (mine) ctx.uplink.failed(e);
    throw e;
  }
}

/** Forward the device's request as it is and relay the answer (no caching). */
export async function forwardAsIs(ctx: RelayContext, t: Target, msg: CoapMessage): Promise<ResponseSpec> {
  const bad = unsafeUnknown(msg);
  if (bad !== undefined) return bad;
  try {
    const res = await exchange(ctx, t, { code: msg.code, options: forwardedOptions(msg, t), payload: msg.payload, confirmable: true });
    return relayed(res);
  } catch (e) {
    return upstreamFailure(e, t);
  }
}
