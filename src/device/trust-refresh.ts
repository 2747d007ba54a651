/**
 * Before each firmware check the device brings its trust up to date from
 * its update server (issue 14), in this order:
 *
 * 1. fetch the trust chain (the same document for every device: the request
 *    says nothing about the device's version) and walk it
 *    (suit/trust-chain.ts): every rotation and owner transfer newer than the
 *    device's version, each verified against the state the previous one
 *    produced; a refused document stops the walk, what came before it stays;
 * 2. fetch the newest revocation list and apply it (suit/revocation.ts): an
 *    older one (a replay) or a bad one is refused and the held list stays;
 * 3. over coaps only, fetch the server's latest revocation sequence number:
 *    the server is authenticated there (DTLS PSK), so a device that holds an
 *    older list than the server says exists installs nothing
 *    (REVOCATION_STALE), and neither does one that cannot get the number.
 *    That bounds a withheld list to one polling interval (README, "What a
 *    device without a clock cannot detect");
 * 4. write the trust store once, only when something changed: one atomic
 *    write (flash/trust-store.ts), so a power cut leaves the old trust set
 *    or the new one, never a mix and never none.
 *
 * Resources the server does not have (4.04) mean "no documents": a plain
 * file server without trust resources still updates devices, under the
 * trust they were provisioned with. Other failures to fetch propagate (the
 * update client retries them as it retries the manifest).
 */
import { fetchAll, isTransient } from '../blockwise/fetch.js';
import { Code } from '../codec/numbers.js';
import { pathOptions } from '../codec/options.js';
import { parseCoapUri } from '../codec/uri.js';
import type { Requester } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { RetryPolicy } from '../messaging/retry.js';
import { decodeCbor } from '../suit/cbor.js';
import { applyRevocationList } from '../suit/revocation.js';
import { decodeTrustChain, walkTrustChain } from '../suit/trust-chain.js';
import { trustLimits, type TrustLimits, type TrustState } from '../suit/trust-set.js';
import { asUint } from '../suit/values.js';
import type { DeviceTrust } from './trust-device.js';

/** Where the trust resources are on the update server (src/server/trust-resources.ts serves them there). */
export interface TrustPaths {
  /** The trust chain: every rotation and owner transfer (CBOR array of documents). */
  readonly chain: string;
  /** The newest revocation list. */
  readonly revocation: string;
  /** The newest revocation list's sequence number (CBOR uint); served over coaps only. */
  readonly revocationSequence: string;
}

/** The paths `coapfw serve` uses. */
export const DEFAULT_TRUST_PATHS: TrustPaths = Object.freeze({
  chain: '/trust/chain',
  revocation: '/trust/revocation',
  revocationSequence: '/trust/revocation-seq',
});

/** Options of {@link refreshTrust}. */
export interface TrustRefreshOptions {
  readonly request: Requester;
  readonly runtime: Runtime;
  /** The manifest's URI: the trust resources are on its server; coaps:// adds the sequence check. */
  readonly manifestUri: string;
  readonly paths?: Partial<TrustPaths>;
  /** Largest trust chain accepted, in bytes. Default 65536. */
  readonly maxChainBytes?: number;
  /** Limits of the trust documents and the stored state (suit/trust-set.ts). */
  readonly limits?: Partial<TrustLimits>;
  readonly retry?: RetryPolicy;
  readonly responseTimeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** What a refresh did. */
export interface TrustRefresh {
  readonly state: TrustState;
  /** Trust versions applied from the chain, in order. */
  readonly applied: readonly number[];
  /** Sequence number of a revocation list accepted in this refresh. */
  readonly revocation?: number;
  /** Whether the trust store was written. */
  readonly written: boolean;
  /** Why the chain walk stopped early, if it did (the state reached is kept). */
  readonly chainError?: CoapfwError;
  /** Why the revocation list offered was not taken, if it was not. */
  readonly revocationError?: CoapfwError;
}

/** Default largest chain: 32 documents of about 2 KiB (a rotation of a 12-key set is under 1.5 KiB). */
const MAX_CHAIN_BYTES = 64 * 1024;
/** A sequence number is a CBOR uint: at most 9 bytes. */
const MAX_SEQUENCE_BYTES = 16;

/** The body of `path` on the manifest's server; undefined for 4.04 (the server has no such resource). */
async function fetchOptional(path: string, maxSize: number, o: TrustRefreshOptions): Promise<Uint8Array | undefined> {
  try {
    const { data } = await fetchAll(o.request, {
      runtime: o.runtime,
      options: pathOptions(path),
      maxSize,
      retry: o.retry ?? { attempts: 5, baseMs: 1000, maxMs: 30_000 },
      signal: o.signal,
      responseTimeoutMs: o.responseTimeoutMs,
    });
    return data;
  } catch (e) {
    if (isCoapfwError(e, 'RESPONSE_CODE') && e.responseCode === Code.NOT_FOUND) return undefined;
    throw e;
  }
}

function asRefusal(e: unknown): CoapfwError {
  if (e instanceof CoapfwError) return e;
  throw e;
}

/** Steps 1 and 2: the state after the chain and the revocation list, nothing written yet. */
async function newState(current: TrustState, o: TrustRefreshOptions, paths: TrustPaths): Promise<Omit<TrustRefresh, 'written'>> {
  let state = current;
  let applied: readonly number[] = [];
  let chainError: CoapfwError | undefined;
  const chainBytes = await fetchOptional(paths.chain, o.maxChainBytes ?? MAX_CHAIN_BYTES, o);
  if (chainBytes !== undefined) {
    try {
      const walk = walkTrustChain(current, decodeTrustChain(chainBytes, o.limits), o.limits);
      ({ state, applied, error: chainError } = walk);
    } catch (e) {
      chainError = asRefusal(e); // a chain that does not decode applies nothing
    }
  }
  let revocation: number | undefined;
  let revocationError: CoapfwError | undefined;
  const listBytes = await fetchOptional(paths.revocation, trustLimits(o.limits).maxDocumentBytes, o);
  if (listBytes !== undefined) {
    try {
      const r = applyRevocationList(state, listBytes, o.limits);
      if (r.changed) revocation = r.state.revocation.sequence;
      state = r.state;
    } catch (e) {
      revocationError = asRefusal(e);
    }
  }
  return { state, applied, ...(revocation === undefined ? {} : { revocation }), ...(chainError ? { chainError } : {}), ...(revocationError ? { revocationError } : {}) };
}

/** Step 3: the server's latest revocation sequence number, over the authenticated channel. */
async function latestSequence(o: TrustRefreshOptions, paths: TrustPaths): Promise<number> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await fetchOptional(paths.revocationSequence, MAX_SEQUENCE_BYTES, o);
  } catch (e) {
    if (!isCoapfwError(e) || e.code === 'ABORTED') throw e;
    // A transient failure keeps its code, so the update client retries it; anything else is final for this check.
    const code = isTransient(e) ? e.code : 'REVOCATION_STALE';
    throw new CoapfwError(code, `trust: cannot get the server's latest revocation sequence over coaps, so nothing is installed: ${e.message}`, { cause: e, responseCode: e.responseCode, maxAge: e.maxAge });
  }
  if (bytes === undefined) {
    throw new CoapfwError('REVOCATION_STALE', `trust: the server has no ${paths.revocationSequence} resource, so the device cannot tell whether its revocation list is the newest; nothing is installed`);
  }
  try {
    return asUint(decodeCbor(bytes, { maxDepth: 1, maxArrayLength: 0, maxItems: 1 }, 'revocation sequence'), 'revocation sequence');
  } catch (e) {
    throw new CoapfwError('REVOCATION_STALE', `trust: the server's latest revocation sequence is not a CBOR unsigned integer (${(e as Error).message}); nothing is installed`, { cause: e });
  }
}

/**
 * Bring `trust` up to date (see the file comment) and return what changed;
 * `trust.state` is the new state afterwards. Throws REVOCATION_STALE (coaps:
 * the device holds an older list than the server's newest, or cannot learn
 * the newest), the fetch errors, and the store's write errors (POWER_CUT).
 */
export async function refreshTrust(trust: DeviceTrust, o: TrustRefreshOptions): Promise<TrustRefresh> {
  const paths: TrustPaths = { ...DEFAULT_TRUST_PATHS, ...o.paths };
  const next = await newState(trust.state, o, paths);
  // Written before the sequence check: what was verified is worth keeping either way.
  const written = next.state !== trust.state;
  if (written) {
    await trust.store.write(next.state);
    trust.state = next.state;
  }
  if (parseCoapUri(o.manifestUri).scheme === 'coaps') {
    const latest = await latestSequence(o, paths);
    const held = next.state.revocation.sequence;
    if (held < latest) {
      const why = next.revocationError ? ` (the list offered was refused: ${next.revocationError.message})` : '';
      throw new CoapfwError('REVOCATION_STALE', `trust: the server's newest revocation list is ${latest} and this device holds ${held}${why}; nothing is installed until it holds list ${latest}`);
    }
  }
  return { ...next, written };
}
