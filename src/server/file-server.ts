/**
 * `coapfw serve DIR`: the TFTP replacement. Every regular file under DIR is
 * served at `/files/<relative path>` and, content-addressed and immutable, at
 * `/fw/sha256/<hex>`; both are listed in `/.well-known/core` (RFC 6690).
 */
import { serveBlock2, type Block2ServeOptions } from '../blockwise/serve.js';
import { bufferSource, type ByteSource } from '../blockwise/source.js';
import { filterLinks, formatLinks, type Link } from '../codec/link-format.js';
import { Code, ContentFormat } from '../codec/numbers.js';
import { uriQuery } from '../codec/options.js';
import type { CoapRequest } from '../messaging/endpoint.js';
import type { FileEntry, FileRepository } from './files.js';
import type { ObserveRegistry } from './observe.js';
import type { Resolver, Resource } from './router.js';
import type { StatusTracker } from './status.js';

const GET_ONLY: ReadonlySet<number> = new Set([Code.GET]);
/** Distinct `/.well-known/core` queries whose documents are kept until the repository changes. */
const MAX_CACHED_QUERIES = 16;

/** What a file server offers besides the files. */
export interface FileResourceOptions extends Block2ServeOptions {
  /** Accept device reports at /status/<id>, list them at /status. */
  readonly status?: StatusTracker;
  /** Make /files/<path> observable: observers are notified when the file changes. */
  readonly observe?: ObserveRegistry;
}

/** Resolver for a file repository's resources. */
export function fileResources(repo: FileRepository, options: FileResourceOptions = {}): Resolver {
  const { status, observe } = options;
  // A file replaced since it was indexed throws CONTENT_CHANGED: the router
  // answers 5.03 with Max-Age 1 rather than old metadata with new bytes.
  const plainFile = (entry: FileEntry): Resource => ({
    methods: GET_ONLY,
    handle: (req: CoapRequest) => serveBlock2(req.message, entry, options),
  });
  const fileResource = (entry: FileEntry): Resource => (observe ? observe.wrap(`files/${entry.path}`, plainFile(entry)) : plainFile(entry));
  // /.well-known/core is encoded and hashed once per repository change (and per
  // distinct query, a few of them kept), not on every block request.
  const extra: Link[] = status ? [{ target: '/status', attributes: { rt: 'coapfw.status', ct: String(ContentFormat.JSON) } }] : [];
  let links: Link[] | undefined;
  const documents = new Map<string, ByteSource>();
  repo.onChange(() => {
    links = undefined;
    documents.clear();
  });
  const coreDocument = (query: string | undefined): ByteSource => {
    const key = query === undefined ? '' : `?${query}`;
    let doc = documents.get(key);
    if (doc === undefined) {
      links ??= [...directoryLinks(repo, observe !== undefined), ...extra];
      if (documents.size >= MAX_CACHED_QUERIES) documents.clear();
      doc = bufferSource(new TextEncoder().encode(formatLinks(filterLinks(links, query))), { contentFormat: ContentFormat.LINK_FORMAT });
      documents.set(key, doc);
    }
    return doc;
  };
  if (observe) {
    repo.onChange((paths) => {
      for (const p of paths) {
        const entry = repo.byRelativePath(p);
        observe.changed(`files/${p}`, entry && plainFile(entry));
      }
    });
  }
  const wellKnown: Resource = {
    methods: GET_ONLY,
    handle: (req) => serveBlock2(req.message, coreDocument(uriQuery(req.message)[0]), options),
  };
  return (path) => {
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

