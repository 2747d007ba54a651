/**
 * The forward proxy (RFC 7252 §5.7.2): a request carrying Proxy-Uri, or
 * Proxy-Scheme with Uri-Host/Uri-Port/Uri-Path/Uri-Query, names its target
 * by absolute URI; the gateway answers it from its caches or forwards it.
 *
 * - Proxy-Uri takes precedence over the Uri-* options (§5.10.2), which are
 *   then ignored; with Proxy-Scheme the URI is composed from them (§6.5),
 *   the port defaulting to the scheme's.
 * - A scheme other than coap and coaps, or an origin the gateway is not
 *   configured to reach (by default only its upstream: an open proxy is an
 *   amplifier for anyone on the link), is 5.05 Proxying Not Supported; a
 *   Proxy-Uri that does not parse, 4.00; a Proxy-Scheme without Uri-Host
 *   (which would name this gateway itself), 5.05.
 * - An unsafe option the proxy does not understand is 4.02 (§5.7.1); unknown
 *   safe-to-forward options are forwarded, critical or not.
 * - Hop-Limit (RFC 8768, which libcoap's client adds with -P) is forwarded one
 *   lower; a request arriving with 1 is 5.08 Hop Limit Reached.
 */
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, isUnsafe, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption, OPTION_DEFINITIONS, stringOption, uriPath, uriQuery } from '../codec/options.js';
import { parseCoapUri, type CoapUri } from '../codec/uri.js';
import { COAPS_PORT, COAP_PORT } from '../codec/numbers.js';
import { isCoapfwError } from '../errors.js';
import type { CoapRequest, RequestHandler, ResponseSpec } from '../messaging/endpoint.js';
import { errorResponse, toResponse } from '../server/responses.js';
import { routeRequests, type Resolver } from '../server/router.js';
import { targetOf, unsafeUnknown, type Target } from './relay.js';

const N = OptionNumber;
const TARGET_OPTIONS: ReadonlySet<number> = new Set([N.PROXY_URI, N.PROXY_SCHEME, N.URI_HOST, N.URI_PORT, N.URI_PATH, N.URI_QUERY]);
const utf8 = new TextDecoder('utf-8', { fatal: true });
/** RFC 8768 Hop-Limit: elective, safe-to-forward, one byte. */
const HOP_LIMIT = 16;
/** 5.08 Hop Limit Reached (RFC 8768 §4). */
const HOP_LIMIT_REACHED = (5 << 5) | 8;

/** Options of {@link proxyHandler}. */
export interface ProxyHandlerOptions {
  /** Whether the gateway may reach `origin` (`coap://host:port`). */
  readonly allow: (origin: string) => boolean;
  /** The resources of a target origin. */
  readonly resolverFor: (target: Target) => Resolver;
  /** Options the gateway's resources process (critical ones outside it are 4.02 unless safe to forward). */
  readonly known: ReadonlySet<number>;
}

/** Whether a request is for the forward proxy. */
export function isProxyRequest(msg: CoapMessage): boolean {
  return getOption(msg, N.PROXY_URI) !== undefined || getOption(msg, N.PROXY_SCHEME) !== undefined;
}

/** The request handler for proxy requests. */
export function proxyHandler(options: ProxyHandlerOptions): RequestHandler {
  return (req) => {
    const target = proxyTarget(req.message);
    if ('code' in target) return target;
    if (!options.allow(target.origin)) return errorResponse(Code.PROXYING_NOT_SUPPORTED, `this gateway does not proxy to ${target.origin}`);
    const bad = unsafeUnknown(req.message);
    if (bad !== undefined) return bad;
    const hops = hopLimit(req.message);
    if (hops !== undefined && hops <= 1) return errorResponse(HOP_LIMIT_REACHED, 'Hop-Limit reached (RFC 8768): a proxy loop?');
    const message = rewritten(req.message, target.uri, hops);
    // Safe-to-forward options unknown to us pass the router's critical-option check (§5.4.2, §5.7.1).
    const known = new Set(options.known);
    for (const o of message.options) if (!isUnsafe(o.number) && !OPTION_DEFINITIONS.has(o.number)) known.add(o.number);
    const forOrigin: Target = { origin: target.origin, uri: { ...target.uri, path: [], query: [] } };
    return routeRequests(options.resolverFor(forOrigin), known)({ ...req, message } satisfies CoapRequest);
  };
}

/** The absolute target URI of a proxy request, or the error response (§5.10.2, §6.5). */
export function proxyTarget(msg: CoapMessage): Target | ResponseSpec {
  let uri: CoapUri;
  try {
    const proxyUri = getOption(msg, N.PROXY_URI);
    if (proxyUri !== undefined) {
      const text = utf8.decode(proxyUri);
      if (!/^coaps?:\/\//i.test(text)) {
        return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(text)
          ? errorResponse(Code.PROXYING_NOT_SUPPORTED, `scheme of ${text.slice(0, 60)} is not coap or coaps`)
          : errorResponse(Code.BAD_REQUEST, 'Proxy-Uri must be an absolute URI');
      }
      uri = parseCoapUri(text);
    } else {
      const scheme = utf8.decode(getOption(msg, N.PROXY_SCHEME)!).toLowerCase();
      if (scheme !== 'coap' && scheme !== 'coaps') return errorResponse(Code.PROXYING_NOT_SUPPORTED, `Proxy-Scheme ${scheme.slice(0, 20)} is not coap or coaps`);
      const host = getOption(msg, N.URI_HOST);
      if (host === undefined) return errorResponse(Code.PROXYING_NOT_SUPPORTED, 'Proxy-Scheme without Uri-Host names this gateway itself');
      const port = getOption(msg, N.URI_PORT);
      const name = utf8.decode(host).toLowerCase();
      uri = { scheme, host: name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name, port: port === undefined ? (scheme === 'coaps' ? COAPS_PORT : COAP_PORT) : decodeUint(port), path: uriPath(msg), query: uriQuery(msg) };
    }
  } catch (e) {
    if (isCoapfwError(e, 'BAD_URI') || isCoapfwError(e, 'BAD_OPTION') || e instanceof TypeError) return errorResponse(Code.BAD_REQUEST, `proxy target: ${(e as Error).message}`);
    return toResponse(e);
  }
  return targetOf(uri);
}

/** The Hop-Limit of a request (RFC 8768 §3: 1..255, default 16 when a proxy adds it), if it carries one. */
function hopLimit(msg: CoapMessage): number | undefined {
  const raw = getOption(msg, HOP_LIMIT);
  return raw === undefined ? undefined : raw.length === 1 ? raw[0]! : 0;
}

/**
 * The request as the target's resources see it: its own Uri-Path and
 * Uri-Query, no proxy options, the Hop-Limit one lower (RFC 8768 §3: every
 * proxy decrements it, so that a loop of proxies ends in 5.08).
 */
function rewritten(msg: CoapMessage, uri: CoapUri, hops: number | undefined): CoapMessage {
  const options: CoapOption[] = msg.options.filter((o) => !TARGET_OPTIONS.has(o.number) && o.number !== HOP_LIMIT);
  if (hops !== undefined) options.push({ number: HOP_LIMIT, value: Uint8Array.of(hops - 1) });
  for (const s of uri.path) options.push(stringOption(N.URI_PATH, s));
  for (const q of uri.query) options.push(stringOption(N.URI_QUERY, q));
  return { ...msg, options: options.sort((a, b) => a.number - b.number) };
}
