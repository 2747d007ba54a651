/**
 * A cache for resources that are not content-addressed (manifests at
 * `/m/<class>`, files by name), with freshness and revalidation
 * (RFC 7252 §5.6):
 *
 * - A representation is fresh for the Max-Age its server gave (60 s when
 *   none, §5.10.5); the device gets what is left of it as Max-Age (§5.7.1).
 * - A stale one is revalidated with its ETag (§5.6.2): one GET of block 0
 *   carrying the ETag; 2.03 Valid, or a 2.05 with the same ETag (servers that
 *   do not answer 2.03), keeps it; anything else replaces it, the remaining
 *   blocks fetched with that ETag pinned. A representation whose ETag changes
 *   during the transfer is fetched again (at most `attempts` times), then
 *   refused (5.02) and counted: never a stitch of two versions (RFC 7959 §2.4).
 * - A device asking with the current ETag gets 2.03 Valid (§5.10.6.2).
 * - Requests for one stale key share one revalidation.
 *
 * Bigger than `maxEntryBytes`: not cached; the caller forwards each request
 * as it is (the key is remembered as such).
 */
import { equalBytes } from '@noble/curves/utils.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { fetchBlocks } from '../blockwise/fetch.js';
import { bufferSource } from '../blockwise/source.js';
import { serveBlock2 } from '../blockwise/serve.js';
import { decodeBlock, encodeBlock, MAX_SZX } from '../codec/block.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption, getOptions, uintOption } from '../codec/options.js';
import type { Requester } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { ResponseSpec } from '../messaging/endpoint.js';

/** A cached representation. */
export interface Representation {
  readonly bytes: Uint8Array;
  /** The server's ETag (served to devices as it is), or undefined when it sent none. */
  readonly etag: Uint8Array | undefined;
  readonly contentFormat: number | undefined;
  /** Runtime ms when it was fetched or last validated. */
  validatedAt: number;
  maxAgeS: number;
}

/** Limits; every one has a safe default. */
export interface ValidatedCacheOptions {
  readonly runtime: Runtime;
  /** Representations kept. Default 512. */
  readonly maxEntries?: number;
  /** Bytes kept in all. Default 32 MiB. */
  readonly maxBytes?: number;
  /** Largest representation cached; larger ones are forwarded block by block. Default 1 MiB. */
  readonly maxEntryBytes?: number;
  /** Fetches of a representation whose ETag keeps changing mid-transfer. Default 3. */
  readonly attempts?: number;
  readonly maxSzx?: number;
}

/** Counters. */
export interface ValidatedCacheStats {
  /** Answered from a fresh representation. */
  fresh: number;
  revalidations: number;
  /** Revalidations that kept the representation (2.03, or the same ETag). */
  validated: number;
  /** Representations fetched whole (new, or changed). */
  fetched: number;
  /** Transfers that saw the ETag change mid-way and were fetched again (or refused, see `refused`). */
  etagChanges: number;
  /** Refused: the ETag kept changing, or the check (envelope verification) failed. */
  refused: number;
  /** 2.03 Valid answers to devices that asked with the current ETag. */
  notModified: number;
}

/** What the server said about a key: keep, replace, too large to cache, or an answer to relay as it is. */
export type Loaded =
  | { readonly kind: 'valid'; readonly maxAgeS: number }
  | { readonly kind: 'new'; readonly rep: Representation }
  | { readonly kind: 'large' }
  | { readonly kind: 'answer'; readonly response: CoapMessage };

/** Checks a new representation before it is cached (envelope verification); throws to refuse it. */
export type RepresentationCheck = (bytes: Uint8Array) => Promise<void> | void;

const DEFAULT_MAX_AGE_S = 60;

/** Representations by key, least recently used first. */
export class ValidatedCache {
  readonly stats: ValidatedCacheStats = { fresh: 0, revalidations: 0, validated: 0, fetched: 0, etagChanges: 0, refused: 0, notModified: 0 };
  private readonly entries = new Map<string, Representation>();
  private readonly large = new Set<string>();
  private readonly loading = new Map<string, Promise<Loaded>>();
  private bytes = 0;

  constructor(private readonly options: ValidatedCacheOptions) {}

  /** Whether `key` is known to be too large to cache. */
  isLarge(key: string): boolean {
    return this.large.has(key);
  }

  /** The fresh representation of `key`, if any. */
  fresh(key: string): Representation | undefined {
    const rep = this.entries.get(key);
    return rep !== undefined && this.remaining(rep) > 0 ? rep : undefined;
  }

  /**
   * Answer `req` for `key`: from a fresh representation, else after
   * `load(previous)` (shared by concurrent requests). An `answer` or `large`
   * result is handed back for the caller to relay.
   */
  async get(req: CoapMessage, key: string, load: (previous: Representation | undefined) => Promise<Loaded>): Promise<ResponseSpec | Loaded> {
    const rep = this.fresh(key);
    if (rep !== undefined) {
      this.stats.fresh++;
      this.touch(key, rep);
      return this.respond(req, rep);
    }
    let pending = this.loading.get(key);
    if (pending === undefined) {
      const previous = this.entries.get(key);
      if (previous !== undefined) this.stats.revalidations++;
      pending = load(previous).finally(() => this.loading.delete(key));
      this.loading.set(key, pending);
      void pending.then((r) => this.store(key, previous, r)).catch(() => undefined); // the caller sees the error
    }
    const loaded = await pending;
    const now = this.entries.get(key);
    if ((loaded.kind === 'valid' || loaded.kind === 'new') && now !== undefined) return this.respond(req, now);
    return loaded;
  }

  /** Drop `key` (e.g. its server answered 4.04). */
  forget(key: string): void {
    const rep = this.entries.get(key);
    if (rep === undefined) return;
    this.entries.delete(key);
    this.bytes -= rep.bytes.length;
  }

  /** The representation as the device asked for it: 2.03 for its ETag, else the block, with the freshness left as Max-Age. */
  respond(req: CoapMessage, rep: Representation): ResponseSpec | Promise<ResponseSpec> {
    const maxAge = uintOption(OptionNumber.MAX_AGE, Math.max(0, Math.floor(this.remaining(rep) / 1000)));
    const source = bufferSource(rep.bytes, { etag: rep.etag, contentFormat: rep.contentFormat });
    if (getOptions(req, OptionNumber.ETAG).some((e) => equalBytes(e, source.etag))) {
      this.stats.notModified++;
      return { code: Code.VALID, options: [{ number: OptionNumber.ETAG, value: source.etag }, maxAge] };
    }
    const withAge = (r: ResponseSpec): ResponseSpec => (r.code === Code.CONTENT ? { ...r, options: [...(r.options ?? []), maxAge] } : r);
    const r = serveBlock2(req, source, { maxSzx: this.options.maxSzx ?? MAX_SZX });
    return r instanceof Promise ? r.then(withAge) : withAge(r);
  }

  /**
   * Load a representation from a server: block 0 with the previous ETag,
   * then the rest with the new ETag pinned (see the module comment).
   */
  async load(request: Requester, options: readonly CoapOption[], previous: Representation | undefined, check?: RepresentationCheck): Promise<Loaded> {
    const attempts = this.options.attempts ?? 3;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.loadOnce(request, options, previous, check);
      } catch (e) {
        if (!isCoapfwError(e, 'ETAG_MISMATCH')) throw e;
        this.stats.etagChanges++;
        if (attempt >= attempts) {
          this.stats.refused++;
          throw new CoapfwError('UPSTREAM', `the upstream's ETag changed during each of ${attempts} transfers`, { cause: e, responseCode: Code.BAD_GATEWAY });
        }
      }
    }
  }

  private async loadOnce(request: Requester, options: readonly CoapOption[], previous: Representation | undefined, check?: RepresentationCheck): Promise<Loaded> {
    const first: CoapOption[] = [...options, { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 0, more: false, szx: MAX_SZX }) }, uintOption(OptionNumber.SIZE2, 0)];
    if (previous?.etag !== undefined) first.push({ number: OptionNumber.ETAG, value: previous.etag });
    const res = await request({ code: Code.GET, options: first, confirmable: true }, {});
    const maxAgeS = maxAgeOf(res);
    const etag = getOption(res, OptionNumber.ETAG);
    if (res.code === Code.VALID || (res.code === Code.CONTENT && previous?.etag !== undefined && etag !== undefined && equalBytes(etag, previous.etag))) {
      return { kind: 'valid', maxAgeS };
    }
    if (res.code !== Code.CONTENT) return { kind: 'answer', response: res };
    const raw = getOption(res, OptionNumber.BLOCK2);
    const block = raw === undefined ? undefined : decodeBlock(raw);
    const size2 = getOption(res, OptionNumber.SIZE2);
    const max = this.options.maxEntryBytes ?? 1 << 20;
    if (block?.more && (size2 === undefined || decodeUint(size2) > max)) return { kind: 'large' };
    const parts = [res.payload];
    if (block?.more) {
      const rest = fetchBlocks(request, { runtime: this.options.runtime, options, startBlock: 1, szx: block.szx, etag, maxSize: max, retry: { attempts: 3, baseMs: 250 } });
      for await (const b of rest) parts.push(b.data);
    }
    const bytes = concatBytes(...parts);
    if (check !== undefined) {
      try {
        await check(bytes);
      } catch (e) {
        this.stats.refused++;
        throw e;
      }
    }
    this.stats.fetched++;
    const cf = getOption(res, OptionNumber.CONTENT_FORMAT);
    return { kind: 'new', rep: { bytes, etag, contentFormat: cf === undefined ? undefined : decodeUint(cf), validatedAt: this.options.runtime.now(), maxAgeS } };
  }

  private store(key: string, previous: Representation | undefined, r: Loaded): void {
    if (r.kind === 'valid' && previous !== undefined) {
      this.stats.validated++;
      previous.validatedAt = this.options.runtime.now();
      previous.maxAgeS = r.maxAgeS;
      this.touch(key, previous);
    } else if (r.kind === 'new') {
      this.forget(key);
      this.large.delete(key);
      this.entries.set(key, r.rep);
      this.bytes += r.rep.bytes.length;
      this.trim();
    } else if (r.kind === 'large') {
      this.forget(key);
      this.large.add(key);
      if (this.large.size > 4096) this.large.delete(this.large.values().next().value!);
    } else if (r.kind === 'answer' && r.response.code === Code.NOT_FOUND) {
      this.forget(key);
    }
  }

  private remaining(rep: Representation): number {
    return rep.validatedAt + rep.maxAgeS * 1000 - this.options.runtime.now();
  }

  private touch(key: string, rep: Representation): void {
    this.entries.delete(key);
    this.entries.set(key, rep);
  }

  private trim(): void {
    const maxEntries = this.options.maxEntries ?? 512;
    const maxBytes = this.options.maxBytes ?? 32 << 20;
    while (this.entries.size > maxEntries || this.bytes > maxBytes) this.forget(this.entries.keys().next().value!);
  }
}

/** Max-Age of a response (RFC 7252 §5.10.5: 60 s when absent or malformed). */
function maxAgeOf(res: CoapMessage): number {
  const raw = getOption(res, OptionNumber.MAX_AGE);
  if (raw === undefined) return DEFAULT_MAX_AGE_S;
  try {
    return decodeUint(raw);
  } catch {
    return DEFAULT_MAX_AGE_S;
  }
}
