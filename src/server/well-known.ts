/**
 * `GET /.well-known/core` (RFC 6690) without the CPU denial of service: the
 * link document is indexed once per repository version (link-index.ts), a
 * filtered query costs O(log n + matches), its result is kept in a bounded
 * LRU, every response is one block (RFC 7959 Block2, stateless like files:
 * one ETag per version), and queries whose result must be computed are
 * rate-limited per peer address and overall, in tokens that grow with the
 * links a query matched, so the CPU the resource may take is bounded.
 *
 * Excess queries are answered, not dropped: a CON left unanswered would be
 * retransmitted four times (RFC 7252 §4.2), costing more than a reply, and
 * the reply is a few bytes (no amplification). A peer over its own limit
 * gets 4.29 Too Many Requests (RFC 8516, the code for a per-client limit);
 * when the server-wide budget is spent, 5.03 Service Unavailable
 * (RFC 7252 §5.9.3.4). Both carry Max-Age: when to ask again.
 */
import { serveBlock2, type Block2ServeOptions } from '../blockwise/serve.js';
import type { ByteSource } from '../blockwise/source.js';
import type { Link } from '../codec/link-format.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { encodeUint, uriQuery } from '../codec/options.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime } from '../core/runtime.js';
import { LinkIndex } from './link-index.js';
import { TokenBuckets, type RateLimit } from './rate-limit.js';
import { errorResponse } from './responses.js';
import type { Resource } from './router.js';

/** Serves a body for a request (Block2, or Q-Block2 when asked). */
export type ServeBody = (req: CoapRequest, source: ByteSource) => ResponseSpec | undefined | Promise<ResponseSpec | undefined>;

/** Limits of the `/.well-known/core` resource; every one has a safe default. */
export interface WellKnownOptions {
  /** Filtered results kept, least recently used dropped first. Default 64. */
  readonly maxCachedQueries?: number;
  /** Link entries held by all cached results together. Default 200,000. */
  readonly maxCachedLinks?: number;
  /**
   * Per peer address, for queries whose result is not cached: a query costs
   * one token plus one per 1,000 links it matched. Default 2 per second, burst 20.
   */
  readonly perPeer?: RateLimit;
  /** Peer addresses the per-peer limit remembers. Default 10,000. */
  readonly maxPeers?: number;
  /** Over all peers (spoofed source addresses each get a fresh bucket). Default 50 per second, burst 100. */
  readonly overall?: RateLimit;
}

/** What the resource did, for tests and metrics. */
export interface WellKnownStats {
  requests: number;
  cacheHits: number;
  /** Filtered results computed from the index. */
  computed: number;
  /** Answered 4.29 (per-peer limit) or 5.03 (overall limit). */
  limited: number;
  /** Index builds (once per repository version that was asked for). */
  builds: number;
}

const GET_ONLY: ReadonlySet<number> = new Set([Code.GET]);
/** Work unit of the rate limits: a query costs one token, plus one per this many links it matched. */
const LINKS_PER_TOKEN = 1000;

/** The `/.well-known/core` resource over a changing list of links. */
export class WellKnownCore {
  readonly stats: WellKnownStats = { requests: 0, cacheHits: 0, computed: 0, limited: 0, builds: 0 };
  private index: LinkIndex | undefined;
  private readonly cache = new Map<string, { source: ByteSource; links: number }>();
  private cachedLinks = 0;
  private readonly perPeer: TokenBuckets;
  private readonly overall: TokenBuckets;
  /** Work done by indexes of earlier versions, so that {@link entriesVisited} only grows. */
  private visitedBefore = 0;

  constructor(
    private readonly links: () => Link[],
    private readonly runtime: Runtime,
    private readonly options: WellKnownOptions = {},
  ) {
    this.perPeer = new TokenBuckets(options.perPeer ?? { ratePerSecond: 2, burst: 20 }, options.maxPeers ?? 10_000);
    this.overall = new TokenBuckets(options.overall ?? { ratePerSecond: 50, burst: 100 }, 1);
  }

  /** Index entries visited to answer queries, over every version (the CPU work, without a clock). */
  get entriesVisited(): number {
    return this.visitedBefore + (this.index?.visited ?? 0);
  }

  /** The links changed: the next request builds a new index; cached results are dropped. */
  invalidate(): void {
    this.visitedBefore += this.index?.visited ?? 0;
    this.index = undefined;
    this.cache.clear();
    this.cachedLinks = 0;
  }

  /**
   * The resource, serving the link document with `serve` (Block2 options, or
   * a function that serves a body, e.g. with Q-Block2 too); `options` are
   * the critical options `serve` processes beyond the server's (router.ts).
   */
  resource(serve: Block2ServeOptions | ServeBody = {}, options?: ReadonlySet<number>): Resource {
    const body: ServeBody = typeof serve === 'function' ? serve : (req, source) => serveBlock2(req.message, source, serve);
    return { methods: GET_ONLY, options, handle: (req) => this.handle(req, body) };
  }

  private handle(req: CoapRequest, serve: ServeBody): ReturnType<ServeBody> {
    this.stats.requests++;
    // RFC 6690 §4.1: one query argument filters; we use the first.
    const query = uriQuery(req.message)[0];
    if (this.index === undefined) {
      this.index = new LinkIndex(this.links());
      this.stats.builds++;
    }
    const index = this.index;
    const filtered = query !== undefined && query.includes('=');
    if (!filtered) return serve(req, index.all);
    let hit = this.cache.get(query);
    if (hit !== undefined) {
      this.stats.cacheHits++;
      this.cache.delete(query); // most recently used last
      this.cache.set(query, hit);
    } else {
      const refused = this.admit(req);
      if (refused !== undefined) return refused;
      const ids = index.match(query);
      hit = { source: index.source(ids), links: ids?.length ?? 0 };
      this.stats.computed++;
      // A broad query costs more: one token more per LINKS_PER_TOKEN links it matched.
      const extra = Math.floor(hit.links / LINKS_PER_TOKEN);
      this.perPeer.charge(req.peer.address, extra);
      this.overall.charge('*', extra);
      this.remember(query, hit);
    }
    return serve(req, hit.source);
  }

  /** Spend a token of the peer's address and of the overall budget; a 4.29/5.03 with Max-Age when either is empty. */
  private admit(req: CoapRequest): ResponseSpec | undefined {
    const now = this.runtime.now();
    const peerWait = this.perPeer.take(req.peer.address, now);
    const wait = peerWait > 0 ? peerWait : this.overall.take('*', now);
    if (wait === 0) return undefined;
    this.stats.limited++;
    const code = peerWait > 0 ? Code.TOO_MANY_REQUESTS : Code.SERVICE_UNAVAILABLE;
    const res = errorResponse(code, peerWait > 0 ? 'too many /.well-known/core queries from this address' : 'too many /.well-known/core queries');
    return { ...res, options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(Math.max(1, Math.ceil(wait / 1000))) }] };
  }

  private remember(query: string, entry: { source: ByteSource; links: number }): void {
    const maxQueries = this.options.maxCachedQueries ?? 64;
    const maxLinks = this.options.maxCachedLinks ?? 200_000;
    if (entry.links > maxLinks || maxQueries < 1) return;
    while (this.cache.size >= maxQueries || this.cachedLinks + entry.links > maxLinks) {
      const [oldest, old] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      this.cachedLinks -= old.links;
    }
    this.cache.set(query, entry);
    this.cachedLinks += entry.links;
  }
}
