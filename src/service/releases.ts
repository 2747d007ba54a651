/**
 * What devices fetch from the update service's database: the newest envelope
 * of a class (`/m/<class>`, observable: client-initiated devices learn of a
 * release this way), a given release's envelope (`/m/<class>/<seq>`), and
 * every stored blob by content (`/fw/sha256/<hex>`), all with stateless
 * Block2 (RFC 7959 §2) straight from the store's chunks, so that any server
 * sharing the database serves any block.
 *
 * The newest release per class and blob sizes are cached in memory; the
 * cache follows the store's change events (a release published through
 * another server arrives by PostgreSQL NOTIFY), and a `resync` empties it.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { serveBlock2 } from '../blockwise/serve.js';
import { bufferSource, ETAG_LENGTH, type ByteSource } from '../blockwise/source.js';
import { Code } from '../codec/numbers.js';
import { CoapfwError } from '../errors.js';
import type { BodyServing } from '../server/file-server.js';
import type { Resolver, Resource } from '../server/router.js';
import type { Release } from './model.js';
import type { Store } from './store.js';
import { checkInt, checkSuitId } from './validate.js';

const GET_ONLY: ReadonlySet<number> = new Set([Code.GET]);
const SHA256_HEX = /^[0-9a-fA-F]{64}$/;

/** A release with its envelope, ready to serve. */
export interface ServedRelease {
  readonly release: Release;
  readonly envelope: ByteSource;
}

/** Bounded LRU map. */
class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly max: number) {}
  get(k: K): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: K, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value!);
  }
  delete(k: K): void {
    this.map.delete(k);
  }
  clear(): void {
    this.map.clear();
  }
}

/** Releases and blob sizes, read through to the store and invalidated by its change events. */
export class ReleaseCache {
  private readonly latestByClass: Lru<string, ServedRelease | null>;
  private readonly bySequence: Lru<string, ServedRelease>;
  private readonly blobSizes: Lru<string, number>;
  /** Bumped by every invalidation, so that a read that started before one does not fill the cache with what it replaced. */
  private generation = 0;

  constructor(
    private readonly store: Store,
    maxEntries = 1024,
  ) {
    this.latestByClass = new Lru(maxEntries);
    this.bySequence = new Lru(maxEntries);
    this.blobSizes = new Lru(16 * maxEntries);
  }

  /** The newest release of a class (lower-case hex id), or undefined. */
  async latest(classId: string): Promise<ServedRelease | undefined> {
    const hit = this.latestByClass.get(classId);
    if (hit !== undefined) return hit ?? undefined;
    const generation = this.generation;
    const release = await this.store.latestRelease(classId);
    const served = release === undefined ? undefined : await this.serve(release);
    if (generation === this.generation) this.latestByClass.set(classId, served ?? null);
    return served;
  }

  /** One release (immutable once published: cached until evicted). */
  async get(classId: string, sequence: number): Promise<ServedRelease | undefined> {
    const key = `${classId}/${sequence}`;
    const hit = this.bySequence.get(key);
    if (hit !== undefined) return hit;
    const release = await this.store.getRelease(classId, sequence);
    return release === undefined ? undefined : this.serve(release);
  }

  /** A stored blob as a Block2 source, or undefined. */
  async blob(sha256: string): Promise<ByteSource | undefined> {
    const address = sha256.toLowerCase();
    let size = this.blobSizes.get(address);
    if (size === undefined) {
      size = await this.store.blobSize(address);
      if (size === undefined) return undefined; // not cached: it may be stored a moment later
      this.blobSizes.set(address, size);
    }
    return storeSource(this.store, address, size);
  }

  /** Forget what is cached of a class (a release was published), or of everything (`resync`). */
  invalidate(classId?: string): void {
    this.generation++;
    if (classId === undefined) this.latestByClass.clear();
    else this.latestByClass.delete(classId);
  }

  private async serve(release: Release): Promise<ServedRelease> {
    const bytes = await this.store.readBlob(release.envelopeSha256, 0, release.envelopeSize);
    if (bytes === undefined) throw new CoapfwError('IO_ERROR', `store: release ${release.sequence} of class ${release.classId} names envelope ${release.envelopeSha256}, which is not stored`);
    const served = { release, envelope: bufferSource(bytes, { etag: etagOf(release.envelopeSha256) }) };
    this.bySequence.set(`${release.classId}/${release.sequence}`, served);
    return served;
  }
}

/** RFC 7252 §5.10.6: the first 8 bytes of the content's SHA-256, as the file server's content addresses have. */
function etagOf(sha256: string): Uint8Array {
  return hexToBytes(sha256.slice(0, 2 * ETAG_LENGTH));
}

/** A blob read block by block from the store's chunks. */
function storeSource(store: Store, address: string, size: number): ByteSource {
  return {
    size,
    etag: etagOf(address),
    read: async (offset, length) => {
      const bytes = await store.readBlob(address, offset, Math.max(1, Math.min(length, size - offset)));
      if (bytes === undefined) throw new CoapfwError('NOT_FOUND', `blob ${address} is no longer stored`);
      return bytes;
    },
  };
}

/** The class id of a path segment (hex, dashes allowed), or INVALID_ARGUMENT. */
export function classOf(segment: string): string {
  return checkSuitId(segment, 'class');
}

/** Options of the release resources. */
export interface ReleaseResourceOptions {
  /** Largest block size exponent served (0..6). */
  readonly maxSzx?: number;
  /** Make `/m/<class>` observable: wrap a resource under a key. */
  readonly observe?: (key: string, resource: Resource) => Resource;
  /** Counts the blocks served from the store (read by metrics at scrape time). */
  readonly stats?: { blocks: number };
  /**
   * How blobs are served, asked per request: the file server's (Q-Block2
   * when the device asks for it, RFC 9177, else Block2). Without it, Block2
   * only, and a Q-Block2 request gets the router's 4.02 (§4.1).
   */
  readonly body?: () => BodyServing | undefined;
}

/** `GET /m/<class>`: the newest envelope of the class; 4.04 until one is published. */
export function manifestResource(cache: ReleaseCache, classId: string, options: ReleaseResourceOptions = {}): Resource {
  return {
    methods: GET_ONLY,
    handle: async (req) => {
      const served = await cache.latest(classId);
      if (served === undefined) throw new CoapfwError('NOT_FOUND', `no release of class ${classId} yet`);
      return serveBlock2(req.message, served.envelope, { maxSzx: options.maxSzx });
    },
  };
}

/** `/m/<class>` (observable) and `/m/<class>/<seq>`. */
export function releaseResolver(cache: ReleaseCache, options: ReleaseResourceOptions = {}): Resolver {
  return (path) => {
    if (path[0] !== 'm' || path.length < 2 || path.length > 3) return undefined;
    let classId: string;
    try {
      classId = classOf(path[1]!);
    } catch (e) {
      return failing(e);
    }
    if (path.length === 2) {
      const resource = manifestResource(cache, classId, options);
      return options.observe ? options.observe(`m/${classId}`, resource) : resource;
    }
    if (!/^\d{1,16}$/.test(path[2]!)) return undefined;
    const seq = Number(path[2]);
    return {
      methods: GET_ONLY,
      handle: async (req) => {
        const served = await cache.get(classId, checkInt(seq, 'release sequence'));
        if (served === undefined) throw new CoapfwError('NOT_FOUND', `no release ${path[2]} of class ${classId}`);
        return serveBlock2(req.message, served.envelope, { maxSzx: options.maxSzx });
      },
    };
  };
}

/** `/fw/sha256/<hex>` from the store: asked after the served directory, which keeps its own files. */
export function blobResolver(cache: ReleaseCache, options: ReleaseResourceOptions = {}): Resolver {
  return (path) => {
    if (path.length !== 3 || path[0] !== 'fw' || path[1] !== 'sha256' || !SHA256_HEX.test(path[2]!)) return undefined;
    const address = path[2]!;
    const body = options.body?.();
    return {
      methods: GET_ONLY,
      options: body?.options,
      handle: async (req) => {
        const source = await cache.blob(address);
        if (source === undefined) throw new CoapfwError('NOT_FOUND', `no blob ${address.toLowerCase()}`);
        if (options.stats) options.stats.blocks++;
        return body ? body.serve(req, source) : serveBlock2(req.message, source, { maxSzx: options.maxSzx });
      },
    };
  };
}

/** A resource that answers every request with the error `e` (a path the router found but could not parse). */
export function failing(e: unknown): Resource {
  return {
    methods: new Set([Code.GET, Code.POST, Code.PUT, Code.DELETE]),
    handle: () => {
      throw e;
    },
  };
}
