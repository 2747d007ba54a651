/**
 * The update server's trust resources (issue 14), beside the manifests:
 *
 * | path | what |
 * |---|---|
 * | `/trust/chain` | every trust update and owner transfer, in version order (`encodeTrustChain`): the same bytes for every device, no query, so a request says nothing about the device's version; block-wise, observable |
 * | `/trust/revocation` | the newest revocation list (4.04 when there is none); observable (RFC 7641), so a registered device hears of a new list at once |
 * | `/trust/revocation-seq` | that list's sequence number, a CBOR uint (0: none); **coaps only** (4.03 in the clear): the authenticated freshness check of README, "What a device without a clock cannot detect" |
 *
 * Owner transfers are served in the chain, in their place by version; an
 * owner whose old vendor will not serve one delivers it directly
 * (device/trust-apply.ts) or from the new source's chain.
 *
 * Documents come from a {@link TrustSource} (trust-source.ts): files of the
 * served directory, or the update service's store. What is served is
 * checked structurally when loaded (a file that is not a trust document,
 * a revocation list in the chain, a second document with a version already
 * taken are reported and left out); signatures are the device's business,
 * since only the device knows the trust state it holds. The chain keeps the
 * newest `maxChainLength` documents (32: what a device walks at once).
 */
import { equalBytes } from '@noble/curves/utils.js';
import { serveBlock2 } from '../blockwise/serve.js';
import { bufferSource, type ByteSource } from '../blockwise/source.js';
import type { Link } from '../codec/link-format.js';
import { Code, ContentFormat, OptionNumber } from '../codec/numbers.js';
import { encodeUint } from '../codec/options.js';
import type { Runtime, TimerHandle } from '../core/runtime.js';
import { CoapfwError } from '../errors.js';
import type { CoapRequest } from '../messaging/endpoint.js';
import { encodeCbor } from '../suit/cbor.js';
import { TRUST_KIND } from '../suit/constants.js';
import { decodeOwnerTransfer } from '../suit/owner.js';
import { decodeRevocationList } from '../suit/revocation.js';
import { encodeTrustChain } from '../suit/trust-chain.js';
import { decodeTrustDocument } from '../suit/trust-document.js';
import { DEFAULT_TRUST_LIMITS } from '../suit/trust-set.js';
import { decodeTrustUpdate } from '../suit/trust-update.js';
import type { ObserveRegistry } from './observe.js';
import { errorResponse } from './responses.js';
import type { Resolver, Resource } from './router.js';
import type { TrustSource } from './trust-source.js';

/** Options of {@link startTrustResources}. */
export interface TrustResourceOptions {
  readonly source: TrustSource;
  /** Whether a request came over coaps (DTLS): the sequence resource answers only then. */
  readonly isSecure: (req: CoapRequest) => boolean;
  /** Timers for the periodic reload of a source without `subscribe`. */
  readonly runtime: Runtime;
  /** Makes the chain and the revocation list observable. */
  readonly observe?: ObserveRegistry;
  /** Reload a source without `subscribe` this often; 0: only at start and on `reload()`. Default 2000 ms. */
  readonly refreshMs?: number;
  /** Largest block size exponent served. Default 6. */
  readonly maxSzx?: number;
  /** Documents served in the chain at most (the newest). Default 32 (`DEFAULT_TRUST_LIMITS.maxChainLength`). */
  readonly maxChainLength?: number;
  /** A document left out, or a reload that failed (the previous documents stay served). */
  readonly onError?: (e: CoapfwError) => void;
}

/** What is served now. */
export interface TrustServed {
  /** Trust versions in the chain, ascending. */
  readonly versions: readonly number[];
  /** Sequence number of the revocation list served; 0 when none. */
  readonly revocationSequence: number;
}

/** Running trust resources: route `resolve` before the files. */
export interface TrustResources {
  readonly resolve: Resolver;
  /** For `/.well-known/core` (the coaps-only resource is not listed). */
  readonly links: readonly Link[];
  served(): TrustServed;
  /** Load the source again now (also done on its change events, or periodically). */
  reload(): Promise<void>;
  close(): void;
}

const GET: ReadonlySet<number> = new Set([Code.GET]);
const CBOR = ContentFormat.CBOR;

interface Snapshot {
  readonly chain: ByteSource;
  readonly versions: readonly number[];
  readonly revocation: ByteSource | undefined;
  readonly sequence: number;
}

/** Version of a chain document; throws for a document that does not belong in a chain. */
function chainVersion(doc: Uint8Array): number {
  const { kind } = decodeTrustDocument(doc);
  if (kind === TRUST_KIND.trustUpdate) return decodeTrustUpdate(doc).set.version;
  if (kind === TRUST_KIND.ownerTransfer) return decodeOwnerTransfer(doc).transfer.version;
  throw new CoapfwError('DOCUMENT_TYPE', 'trust: a revocation list does not belong in the trust chain');
}

function buildSnapshot(docs: Awaited<ReturnType<TrustSource['load']>>, maxChain: number, report: (e: CoapfwError) => void): Snapshot {
  const byVersion = new Map<number, Uint8Array>();
  for (const doc of docs.chain) {
    try {
      const v = chainVersion(doc);
      const held = byVersion.get(v);
      if (held && !equalBytes(held, doc)) report(new CoapfwError('CONFLICT', `trust: two different documents for trust version ${v}; serving the first`));
      else byVersion.set(v, doc);
    } catch (e) {
      if (!(e instanceof CoapfwError)) throw e;
      report(new CoapfwError(e.code, `trust: a chain document is left out: ${e.message}`, { cause: e }));
    }
  }
  const versions = [...byVersion.keys()].sort((a, b) => a - b).slice(-maxChain);
  let sequence = 0;
  let revocation: ByteSource | undefined;
  if (docs.revocation) {
    try {
      sequence = decodeRevocationList(docs.revocation).list.sequence;
      revocation = bufferSource(docs.revocation, { contentFormat: CBOR });
    } catch (e) {
      if (!(e instanceof CoapfwError)) throw e;
      report(new CoapfwError(e.code, `trust: the revocation list is left out: ${e.message}`, { cause: e }));
    }
  }
  return { chain: bufferSource(encodeTrustChain(versions.map((v) => byVersion.get(v)!)), { contentFormat: CBOR }), versions, revocation, sequence };
}

const sameSource = (a: ByteSource | undefined, b: ByteSource | undefined): boolean => (a === undefined ? b === undefined : b !== undefined && equalBytes(a.etag, b.etag));

/**
 * Load `source` and serve its documents (see the file comment). Rejects
 * when the first load fails; later failures keep the last good documents
 * and go to `onError`.
 */
export async function startTrustResources(options: TrustResourceOptions): Promise<TrustResources> {
  const report = options.onError ?? (() => {});
  const maxChain = options.maxChainLength ?? DEFAULT_TRUST_LIMITS.maxChainLength;
  let snap = buildSnapshot(await options.source.load(), maxChain, report);
  const serve = (source: () => ByteSource | undefined): Resource => ({
    methods: GET,
    handle: (req) => {
      const s = source();
      return s ? serveBlock2(req.message, s, { maxSzx: options.maxSzx }) : errorResponse(Code.NOT_FOUND, 'no revocation list is published');
    },
  });
  const chainResource = serve(() => snap.chain);
  const revocationResource = serve(() => snap.revocation);
  const sequenceResource: Resource = {
    methods: GET,
    handle: (req) => {
      // Only inside DTLS is the answer worth anything: the server is authenticated there.
      if (!options.isSecure(req)) return errorResponse(Code.FORBIDDEN, 'the revocation sequence is served over coaps only');
      return { code: Code.CONTENT, options: [{ number: OptionNumber.CONTENT_FORMAT, value: encodeUint(CBOR) }], payload: encodeCbor(snap.sequence) };
    },
  };
  const observed = (key: string, r: Resource): Resource => (options.observe ? options.observe.wrap(key, r) : r);
  let running: Promise<void> | undefined;
  let again = false;
  const reload = async (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        try {
          const next = buildSnapshot(await options.source.load(), maxChain, report);
          const old = snap;
          snap = next;
          if (!sameSource(old.chain, next.chain)) options.observe?.changed('trust/chain', chainResource);
          if (!sameSource(old.revocation, next.revocation)) options.observe?.changed('trust/revocation', next.revocation ? revocationResource : undefined);
        } catch (e) {
          report(e instanceof CoapfwError ? e : new CoapfwError('IO_ERROR', `trust: reload failed: ${(e as Error).message}`, { cause: e }));
        }
      } while (again);
    })().finally(() => (running = undefined));
    return running;
  };
  const stop = watch(options, reload);
  const resolve: Resolver = (path) => {
    if (path[0] !== 'trust' || path.length !== 2) return undefined;
    if (path[1] === 'chain') return observed('trust/chain', chainResource);
    if (path[1] === 'revocation') return observed('trust/revocation', revocationResource);
    if (path[1] === 'revocation-seq') return sequenceResource;
    return undefined;
  };
  const ct = String(CBOR);
  return {
    resolve,
    links: [
      { target: '/trust/chain', attributes: { rt: 'coapfw.trust-chain', ct, obs: true } },
      { target: '/trust/revocation', attributes: { rt: 'coapfw.revocation', ct, obs: true } },
    ],
    served: () => ({ versions: snap.versions, revocationSequence: snap.sequence }),
    reload,
    close: stop,
  };
}

/** Reload on the source's change events, or every refreshMs; returns stop. */
function watch(options: TrustResourceOptions, reload: () => Promise<void>): () => void {
  if (options.source.subscribe) return options.source.subscribe(() => void reload());
  const ms = options.refreshMs ?? 2000;
  if (ms === 0) return () => {};
  let stopped = false;
  let timer: TimerHandle = options.runtime.setTimer(ms, tick);
  function tick(): void {
    // reload() reports its own failures and never rejects.
    void reload().finally(() => {
      if (!stopped) timer = options.runtime.setTimer(ms, tick);
    });
  }
  return () => {
    stopped = true;
    options.runtime.clearTimer(timer);
  };
}
