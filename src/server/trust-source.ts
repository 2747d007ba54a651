/**
 * Where a server's trust documents come from (src/server/trust-resources.ts
 * serves them): the files of a directory (`coapfw serve DIR` reads
 * `DIR/.trust/`), or the update service's store, or anything else that
 * implements {@link TrustSource}.
 *
 * A directory holds one document per file, in any order and under any name
 * (`rotation-2.cftr`, `transfer-50.cftr`, `revocation-3.cftr`): every
 * trust update and owner transfer goes into the chain, and the revocation
 * list with the highest sequence number is the one served. Publishing is
 * dropping a file in (write it under a temporary name and rename it, as
 * for images: hidden and temporary names, scan-filter.ts, are never read).
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readFileBounded } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';
import { TRUST_KIND } from '../suit/constants.js';
import { decodeRevocationList } from '../suit/revocation.js';
import { decodeTrustDocument } from '../suit/trust-document.js';
import { DEFAULT_TRUST_LIMITS } from '../suit/trust-set.js';
import { isHiddenName, isTemporaryName } from './scan-filter.js';

/** What a server serves about trust. */
export interface TrustDocuments {
  /** Trust updates and owner transfers, in any order (the resources sort them by version). */
  readonly chain: readonly Uint8Array[];
  /** The newest revocation list, if there is one. */
  readonly revocation?: Uint8Array;
}

/** A provider of trust documents. */
export interface TrustSource {
  /** The documents as they are now. */
  load(): Promise<TrustDocuments>;
  /**
   * Call `listener` whenever the documents may have changed; returns the
   * unsubscribe function. A source without it is reloaded periodically.
   */
  subscribe?(listener: () => void): () => void;
}

/** Options of {@link directoryTrustSource}. */
export interface DirectoryTrustSourceOptions {
  /** Files looked at. Default 256. */
  readonly maxFiles?: number;
  /** A file that is not a trust document (it is skipped). */
  readonly onError?: (e: CoapfwError) => void;
}


/** The revocation list with the highest sequence number of `lists`. */
export function newestRevocation(lists: readonly Uint8Array[]): Uint8Array | undefined {
  let best: { seq: number; bytes: Uint8Array } | undefined;
  for (const bytes of lists) {
    const seq = decodeRevocationList(bytes).list.sequence;
    if (best === undefined || seq > best.seq) best = { seq, bytes };
  }
  return best?.bytes;
}

/**
 * The trust documents in the files of `dir` (see the file comment). A
 * missing directory holds none.
 */
export function directoryTrustSource(dir: string, options: DirectoryTrustSourceOptions = {}): TrustSource {
  const maxFiles = options.maxFiles ?? 256;
  return {
    async load(): Promise<TrustDocuments> {
      let names: string[];
      try {
        names = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile() && !isHiddenName(d.name) && !isTemporaryName(d.name)).map((d) => d.name).sort();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { chain: [] };
        throw new CoapfwError('IO_ERROR', `trust: cannot read ${dir}: ${(e as Error).message}`, { cause: e, path: dir });
      }
      if (names.length > maxFiles) throw new CoapfwError('LIMIT_EXCEEDED', `trust: ${dir} holds ${names.length} files, more than ${maxFiles}`, { path: dir });
      const chain: Uint8Array[] = [];
      const lists: Uint8Array[] = [];
      for (const name of names) {
        const path = join(dir, name);
        try {
          const bytes = await readFileBounded(path, DEFAULT_TRUST_LIMITS.maxDocumentBytes, 'trust document');
          const { kind } = decodeTrustDocument(bytes);
          if (kind === TRUST_KIND.revocationList) {
            decodeRevocationList(bytes);
            lists.push(bytes);
          } else chain.push(bytes);
        } catch (e) {
          if (!(e instanceof CoapfwError)) throw e;
          options.onError?.(new CoapfwError(e.code, `trust: ${path}: ${e.message} (not served)`, { cause: e, path }));
        }
      }
      const revocation = newestRevocation(lists);
      return { chain, ...(revocation ? { revocation } : {}) };
    },
  };
}

/** A stored trust document's row, as the update service's Store lists it (src/service/model.ts). */
export interface StoredTrustDocument {
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
}

/**
 * The part of the update service's `Store` (src/service/store.ts) a trust
 * source needs; a Store is one. Kinds: 'rotation' (trust updates),
 * 'transfer' (owner transfers), 'revocation' (lists, versioned by sequence).
 */
export interface TrustDocumentStore {
  listTrustDocuments(kind: 'rotation' | 'revocation' | 'transfer', scope: string, afterVersion?: number): Promise<readonly StoredTrustDocument[]>;
  readBlob(sha256: string, offset: number, length: number): Promise<Uint8Array | undefined>;
  subscribe(listener: (change: { readonly kind: string }) => void): () => void;
}

async function listAll(store: TrustDocumentStore, kind: 'rotation' | 'revocation' | 'transfer', scope: string): Promise<StoredTrustDocument[]> {
  const all: StoredTrustDocument[] = [];
  for (;;) {
    const page = await store.listTrustDocuments(kind, scope, all.at(-1)?.version);
    if (page.length === 0) return all;
    all.push(...page);
  }
}

async function bytesOf(store: TrustDocumentStore, d: StoredTrustDocument): Promise<Uint8Array> {
  const bytes = await store.readBlob(d.sha256, 0, d.size);
  if (bytes === undefined || bytes.length !== d.size) throw new CoapfwError('IO_ERROR', `trust: stored document ${d.sha256} is missing or short`);
  return bytes;
}

/**
 * Trust documents from the update service's store, under `scope` ('' for
 * the whole service): every rotation and transfer, and the revocation list
 * of the highest version. Reloaded on the store's 'trust' and 'resync'
 * change events (on PostgreSQL, from every server sharing the database).
 */
export function storeTrustSource(store: TrustDocumentStore, scope = ''): TrustSource {
  return {
    async load(): Promise<TrustDocuments> {
      const rows = [...(await listAll(store, 'rotation', scope)), ...(await listAll(store, 'transfer', scope))];
      const chain: Uint8Array[] = [];
      for (const r of rows) chain.push(await bytesOf(store, r));
      const newest = (await listAll(store, 'revocation', scope)).at(-1);
      return { chain, ...(newest ? { revocation: await bytesOf(store, newest) } : {}) };
    },
    subscribe(listener: () => void): () => void {
      return store.subscribe((change) => {
        if (change.kind === 'trust' || change.kind === 'resync') listener();
      });
    },
  };
}
