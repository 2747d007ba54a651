/**
 * `coapfw serve DIR`: the TFTP replacement. Every regular file under DIR is
 * served at `/files/<relative path>` and, content-addressed and immutable, at
 * `/fw/sha256/<hex>`; both are listed in `/.well-known/core` (RFC 6690).
 */
import { serveBlock2, type Block2ServeOptions } from '../blockwise/serve.js';
import type { Link } from '../codec/link-format.js';
import { Code, ContentFormat } from '../codec/numbers.js';
import type { CoapRequest } from '../messaging/endpoint.js';
import type { Runtime } from '../core/runtime.js';
import { systemRuntime } from '../transport/runtime.js';
import type { FileEntry, FileRepository } from './files.js';
import type { ObserveRegistry } from './observe.js';
import type { Resolver, Resource } from './router.js';
import type { StatusTracker } from './status.js';
import { WellKnownCore, type WellKnownOptions } from './well-known.js';

const GET_ONLY: ReadonlySet<number> = new Set([Code.GET]);

/** What a file server offers besides the files. */
export interface FileResourceOptions extends Block2ServeOptions {
  /** Accept device reports at /status/<id>, list them at /status. */
  readonly status?: StatusTracker;
  /** Make /files/<path> observable: observers are notified when the file changes. */
  readonly observe?: ObserveRegistry;
  /** Limits of /.well-known/core (cache, per-peer and overall rate of queries). */
  readonly wellKnown?: WellKnownOptions;
  /** Clock for the rate limits. Default the system's. */
  readonly runtime?: Runtime;
  /** More links for `/.well-known/core` (RFC 6690 §4): the resources an embedding application adds, listed first. */
  readonly links?: readonly Link[];
}

/** Counters of the file resources, read by metrics at scrape time. */
export interface FileResourceStats {
  /** Block2 (or whole-file) GETs answered from a file. */
  blocks: number;
}

/** A file repository's resolver, with its /.well-known/core and counters for inspection. */
export type FileResolver = Resolver & { readonly wellKnown: WellKnownCore; readonly stats: FileResourceStats };

/** Resolver for a file repository's resources. */
export function fileResources(repo: FileRepository, options: FileResourceOptions = {}): FileResolver {
  const { status, observe } = options;
  const stats: FileResourceStats = { blocks: 0 };
  // A file replaced since it was indexed throws CONTENT_CHANGED: the router
  // answers 5.03 with Max-Age 1 rather than old metadata with new bytes.
  const plainFile = (entry: FileEntry): Resource => ({
    methods: GET_ONLY,
    handle: (req: CoapRequest) => {
      stats.blocks++;
      return serveBlock2(req.message, entry, options);
    },
  });
  const fileResource = (entry: FileEntry): Resource => (observe ? observe.wrap(`files/${entry.path}`, plainFile(entry)) : plainFile(entry));
  // /.well-known/core is indexed once per repository change, on demand.
  const extra: Link[] = status ? [{ target: '/status', attributes: { rt: 'coapfw.status', ct: String(ContentFormat.JSON) } }] : [];
  const appLinks = options.links ?? [];
  const core = new WellKnownCore(() => [...appLinks, ...directoryLinks(repo, observe !== undefined), ...extra], options.runtime ?? systemRuntime, options.wellKnown);
  repo.onChange(() => core.invalidate());
  if (observe) {
    repo.onChange((paths) => {
      for (const p of paths) {
        const entry = repo.byRelativePath(p);
        observe.changed(`files/${p}`, entry && plainFile(entry));
      }
    });
  }
  const wellKnown = core.resource(options);
  const resolve: Resolver = (path) => {
    if (path.length === 2 && path[0] === '.well-known' && path[1] === 'core') return wellKnown;
    if (status && path[0] === 'status' && path.length <= 2) return status.resource(path[1]);
    if (path[0] === 'files' && path.length >= 2) {
      const entry = repo.byRelativePath(path.slice(1).join('/'));
      return entry && fileResource(entry);
    }
    if (path.length === 3 && path[0] === 'fw' && path[1] === 'sha256' && /^[0-9a-fA-F]{64}$/.test(path[2]!)) {
      // Content-addressed, hence immutable: nothing to observe (RFC 7641 §1.2), and
      // notifications keyed by path would hand an observer bytes with another digest.
      const entry = repo.bySha256(path[2]!);
      return entry && plainFile(entry);
    }
    return undefined;
  };
  return Object.assign(resolve, { wellKnown: core, stats });
}

/** The links of every file: by path and by digest, with size and content format. */
export function directoryLinks(repo: FileRepository, observable = false): Link[] {
  const links: Link[] = [];
  for (const f of repo.list()) {
    const path = f.path.split('/').map(encodeURIComponent).join('/');
    const attributes: Record<string, string | true> = { ct: String(ContentFormat.OCTET_STREAM), sz: String(f.size), title: f.path };
    if (observable) attributes.obs = true;
    links.push({ target: `/files/${path}`, attributes });
  }
  for (const f of repo.list()) {
    links.push({ target: `/fw/sha256/${f.sha256}`, attributes: { rt: 'firmware', ct: String(ContentFormat.OCTET_STREAM), sz: String(f.size) } });
  }
  return links;
}

