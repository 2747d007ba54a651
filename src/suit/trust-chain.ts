/**
 * Walking the trust chain: a device that missed several rotations fetches
 * the server's list of trust documents and applies, in version order, each
 * one newer than its own (TUF specification §5.3: N+1, N+2, ... until none
 * is left). Owner transfers in the list are applied in their place, under
 * the owner's signature.
 *
 * ```cddl
 * trust-chain = [* bstr .cbor trust-document]   ; what a server serves, e.g. at /trust
 * ```
 * The same list for every device (the server does not need to know a
 * device's version, and the request reveals nothing about it); documents
 * at or below the device's version are skipped.
 */
import { CoapfwError, isCoapfwError } from '../errors.js';
import { bstr, decodeCbor, encodeCbor } from './cbor.js';
import { TRUST_KIND } from './constants.js';
import { suitLimits } from './limits.js';
import { applyOwnerTransfer, decodeOwnerTransfer } from './owner.js';
import { decodeTrustDocument, trustKindName } from './trust-document.js';
import { trustLimits, type TrustLimits, type TrustState } from './trust-set.js';
import { applyTrustUpdate, decodeTrustUpdate } from './trust-update.js';
import { asArray, asBytes } from './values.js';

/** Encode a list of trust documents as a trust chain. */
export function encodeTrustChain(docs: readonly Uint8Array[]): Uint8Array {
  return encodeCbor(docs.map((d) => bstr(d)));
}

/** Decode a trust chain into its documents (each still undecoded). SUIT_LIMIT past `maxChainLength`. */
export function decodeTrustChain(bytes: Uint8Array, limits?: Partial<TrustLimits>): Uint8Array[] {
  const lim = trustLimits(limits);
  const maxBytes = lim.maxDocumentBytes * lim.maxChainLength;
  if (bytes.length > maxBytes) throw new CoapfwError('SUIT_LIMIT', `trust chain: ${bytes.length} bytes exceeds ${maxBytes}`);
  const a = asArray(decodeCbor(bytes, suitLimits({ maxArrayLength: lim.maxChainLength }), 'trust chain'), 'trust chain');
  return a.map((d, i) => asBytes(d, `trust chain entry ${i}`).slice());
}

/** What a walk did. */
export interface ChainWalk {
  /** The state after the last document applied (the input state if none was). */
  readonly state: TrustState;
  /** Trust versions applied, in order. */
  readonly applied: readonly number[];
  /** Why the walk stopped before the end, if it did; `state` is still valid and worth keeping. */
  readonly error?: CoapfwError;
}

function versionOf(doc: Uint8Array, lim: TrustLimits): { version: number; kind: number } {
  const { kind } = decodeTrustDocument(doc, undefined, lim);
  if (kind === TRUST_KIND.trustUpdate) return { kind, version: decodeTrustUpdate(doc, lim).set.version };
  if (kind === TRUST_KIND.ownerTransfer) return { kind, version: decodeOwnerTransfer(doc, lim).transfer.version };
  throw new CoapfwError('DOCUMENT_TYPE', `trust chain: a ${trustKindName(kind)} does not belong in a trust chain`);
}

/**
 * Apply every document of `docs` newer than `current`, in version order,
 * each verified against the state the previous one produced. Stops at the
 * first refusal and returns it in `error` with the state reached so far
 * (every document applied until then was verified, so the caller persists
 * `state` when `applied` is not empty). A malformed chain applies nothing.
 * Only programming errors (not CoapfwError) are thrown.
 */
export function walkTrustChain(current: TrustState, docs: readonly Uint8Array[], limits?: Partial<TrustLimits>): ChainWalk {
  const lim = trustLimits(limits);
  if (docs.length > lim.maxChainLength) {
    return { state: current, applied: [], error: new CoapfwError('SUIT_LIMIT', `trust chain: ${docs.length} documents exceeds ${lim.maxChainLength}`) };
  }
  let entries: { doc: Uint8Array; version: number; kind: number }[];
  try {
    entries = docs.map((doc) => ({ doc, ...versionOf(doc, lim) })).sort((a, b) => a.version - b.version);
  } catch (e) {
    if (!isCoapfwError(e)) throw e;
    return { state: current, applied: [], error: e };
  }
  let state = current;
  const applied: number[] = [];
  for (const { doc, version, kind } of entries) {
    // Already applied (or superseded): the same list serves every device.
    if (version <= state.version) continue;
    try {
      state = kind === TRUST_KIND.trustUpdate ? applyTrustUpdate(state, doc, lim) : applyOwnerTransfer(state, doc, lim);
      applied.push(version);
    } catch (e) {
      if (!isCoapfwError(e)) throw e;
      return { state, applied, error: e };
    }
  }
  return { state, applied };
}
