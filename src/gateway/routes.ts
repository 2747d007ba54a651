/**
 * What the gateway does with a request for a resource of some origin, the
 * same whether the device named it with Proxy-Uri (the forward proxy) or by
 * the gateway's own path (the mirror of the upstream):
 *
 * - `/fw/sha256/<hex>`: the block cache ({@link BlockCache}), whatever the origin.
 * - `/m/...`: manifests, through the revalidating cache, each new one
 *   verified against the gateway's trust anchors first ({@link EnvelopeGuard}).
 * - `/d...`, `/status/<id>` at the upstream: registrations and reports,
 *   store-and-forward ({@link DeviceRelay}).
 * - anything else: GET through the revalidating cache (forwarded block by
 *   block when too large for it), other methods forwarded as they are, with
 *   bodies reassembled first (Block1, at most `maxBodyBytes`).
 */
import { blockSize, MAX_SZX } from '../codec/block.js';
import { Block1Receiver, withBlock1 } from '../blockwise/block1.js';
import { fetchBody } from '../blockwise/fetch-body.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { uriPath, uriQuery } from '../codec/options.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import { errorResponse } from '../server/responses.js';
import type { Resolver, Resource } from '../server/router.js';
import type { BlockCache } from './content-cache.js';
import type { DeviceRelay } from './devices.js';
import type { BlockFetcher } from './fill.js';
import { forwardAsIs, relayed, requesterFor, resourceKey, targetOptions, upstreamFailure, type RelayContext, type Target } from './relay.js';
import type { Loaded, ValidatedCache } from './validated-cache.js';
import { ObserveRelay } from './observe-relay.js';
import type { EnvelopeGuard } from './verify.js';
import { isUplinkFailure } from './upstream.js';

/** Everything the routes use. */
export interface RoutesContext {
  readonly relay: RelayContext;
  readonly cache: BlockCache;
  readonly validated: ValidatedCache;
  readonly guard: EnvelopeGuard | undefined;
  readonly devices: DeviceRelay;
  /** The configured upstream (path empty). */
  readonly upstream: Target;
  readonly runtime: Runtime;
  /** Largest image fetched into the cache. */
  readonly maxImageBytes: number;
  /** Largest request body forwarded. Default 1024. */
  readonly maxBodyBytes?: number;
  /** Relays GETs with Observe; without it they are answered unobserved. */
  readonly observe?: ObserveRelay;
}

const GET_ONLY: ReadonlySet<number> = new Set([Code.GET]);
const ANY: ReadonlySet<number> = new Set([Code.GET, Code.POST, Code.PUT, Code.DELETE, Code.FETCH, Code.PATCH, Code.IPATCH]);
const HEX = /^[0-9a-fA-F]{64}$/;

/** The resolver for `origin`'s resources; `generic` false leaves every other path to the next resolver (4.04). */
export function originResolver(ctx: RoutesContext, origin: Target, generic: boolean): Resolver {
  const block1 = new Block1Receiver({ runtime: ctx.runtime, maxBodySize: ctx.maxBodyBytes ?? 1024 });
  const isUpstream = origin.origin === ctx.upstream.origin;
  return (path, msg) => {
    if (path.length === 3 && path[0] === 'fw' && path[1] === 'sha256' && HEX.test(path[2]!)) {
      return { methods: GET_ONLY, handle: (req) => ctx.cache.serve(req.message, path[2]!.toLowerCase(), imageFetcher(ctx, at(origin, req.message))) };
    }
    if (path[0] === 'm' && path.length >= 2) return { methods: GET_ONLY, handle: (req) => manifest(ctx, at(origin, req.message), path, req) };
    if (isUpstream) {
      const device = ctx.devices.resolve(path, msg);
      if (device !== undefined) return device;
    }
    if (!generic) return undefined;
    return genericResource(ctx, origin, block1);
  };
}

/** `origin` with the request's Uri-Path and Uri-Query. */
function at(origin: Target, msg: CoapMessage): Target {
  return { origin: origin.origin, uri: { ...origin.uri, path: uriPath(msg), query: uriQuery(msg) } };
}

/**
 * Blocks of an image from `t`'s server, the fastest way it serves them
 * (src/blockwise/fetch-body.ts): Q-Block2 (RFC 9177) when it does, learnt
 * from a CON probe for the first block missing (§4.1), else Block2 from
 * there (RFC 7959). A resume skips the blocks the fill holds; Q-Block2 asks
 * no further ahead of the first missing block than the fill keeps.
 */
function imageFetcher(ctx: RoutesContext, t: Target): BlockFetcher {
  return (from, onBlock) =>
    requesterFor(ctx.relay, t, async (request, openStream) => {
      const szx = from.szx ?? MAX_SZX;
      const r = await fetchBody(
        { request, openStream, runtime: ctx.runtime, options: targetOptions(t) },
        {
          szx,
          held: from.held, // given whenever the fill has bytes (startOffset > 0)
          etag: from.etag,
          maxSize: ctx.maxImageBytes,
          maxAhead: Math.max(1, Math.floor(from.maxAheadBytes / blockSize(szx))),
          responseTimeoutMs: ctx.relay.responseTimeoutMs ?? 10_000,
          retry: { attempts: 4, baseMs: 500, maxMs: 4000, maxRetryAfterMs: 10_000 },
          onBlock,
        },
      );
      return r.mode;
    });
}

/** A manifest: fresh from the cache, else loaded (and verified when new); observed through the relay, each notification verified. */
function manifest(ctx: RoutesContext, t: Target, path: readonly string[], req: CoapRequest): Promise<ResponseSpec | undefined> {
  const classHex = path.length >= 2 && /^[0-9a-fA-F]{32}$/.test(path[1]!) ? path[1]!.toLowerCase() : undefined;
  const guard = ctx.guard;
  const check = guard === undefined ? undefined : async (bytes: Uint8Array): Promise<void> => void (await guard.check(bytes, `${t.origin}/${path.join('/')}`, classHex));
  if (ctx.observe !== undefined && ObserveRelay.wants(req.message)) return ctx.observe.handle(req, t, check);
  return cachedGet(ctx, t, req.message, check);
}

function genericResource(ctx: RoutesContext, origin: Target, block1: Block1Receiver): Resource {
  const body = withBlock1((req: CoapRequest) => {
    const t = at(origin, req.message);
    if (req.message.code === Code.GET) return cachedGet(ctx, t, req.message);
    return forwardAsIs(ctx.relay, t, req.message);
  }, block1);
  return {
    methods: ANY,
    // A GET with Observe goes to the relay (a GET has no body: no Block1 there).
    handle: (req) => (ctx.observe !== undefined && ObserveRelay.wants(req.message) ? ctx.observe.handle(req, at(origin, req.message)) : body(req)),
  };
}

/**
 * GET through the revalidating cache. Failures to reach the server are
 * 5.04/5.02; a refused representation (verification, an ETag that kept
 * changing) is 5.02 with the reason.
 */
async function cachedGet(ctx: RoutesContext, t: Target, req: CoapMessage, check?: (bytes: Uint8Array) => Promise<void>): Promise<ResponseSpec> {
  const accept = req.options.find((o) => o.number === OptionNumber.ACCEPT);
  const key = resourceKey(t, accept?.value);
  if (ctx.validated.isLarge(key) && check === undefined) return forwardAsIs(ctx.relay, t, req);
  const options = accept === undefined ? targetOptions(t) : [...targetOptions(t), accept];
  try {
    const r = await ctx.validated.get(req, key, async (previous) => {
      let loaded: Loaded | undefined;
      await requesterFor(ctx.relay, t, async (request) => void (loaded = await ctx.validated.load(request, options, previous, check)));
      return loaded!;
    });
    if (!('kind' in r)) return r;
    if (r.kind === 'answer') return relayed(r.response);
    if (r.kind === 'large') {
      if (check !== undefined) return errorResponse(Code.BAD_GATEWAY, 'the upstream manifest is larger than the gateway caches');
      return forwardAsIs(ctx.relay, t, req);
    }
    return errorResponse(Code.INTERNAL_SERVER_ERROR, 'gateway: nothing cached');
  } catch (e) {
    if (isUplinkFailure(e) || isCoapfwError(e, 'RESPONSE_CODE')) return upstreamFailure(e, t);
    if (e instanceof CoapfwError) return errorResponse(Code.BAD_GATEWAY, `refused: ${e.message} [${e.code}]`);
    throw e;
  }
}
