/**
 * Trust documents handed to a device directly, not fetched from its update
 * server: the owner's own channel (a local interface, an owner's app, the
 * `coapfw trust apply` command on a simulated device). This is how an owner
 * moves a device to a new source when the old vendor will not serve the
 * transfer: the device checks the owner's signature, not the channel, so no
 * rooting is needed and a stranger's transfer is still refused (NOT_OWNER).
 *
 * Each document is verified against the state the previous one produced,
 * exactly as from the server (suit/trust-chain.ts, suit/revocation.ts), and
 * the store is written once at the end, only if something changed: a power
 * cut leaves the old state or the new one.
 */
import { CoapfwError, isCoapfwError } from '../errors.js';
import { TRUST_KIND } from '../suit/constants.js';
import { applyRevocationList } from '../suit/revocation.js';
import { decodeTrustChain, walkTrustChain } from '../suit/trust-chain.js';
import { decodeTrustDocument } from '../suit/trust-document.js';
import type { TrustLimits, TrustState } from '../suit/trust-set.js';
import type { DeviceTrust } from './trust-device.js';

/** What one document did. */
export interface AppliedDocument {
  /** 'trust update', 'revocation list', 'owner transfer' or 'trust chain'. */
  readonly kind: string;
  /** Trust version, or revocation list sequence, after it. */
  readonly version: number;
  /** False when the device already held it (or everything in it). */
  readonly changed: boolean;
}

/** A trust chain is a CBOR array; a document is tagged (suit/trust-document.ts). */
function isChain(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0]! >> 5 === 4;
}

/**
 * Apply one trust document (a trust update, an owner transfer, a revocation
 * list) or a whole trust chain to `state`. Throws the verifier's typed error
 * (NOT_OWNER, TRUST_THRESHOLD, REVOCATION_ROLLBACK, DOCUMENT_TYPE ...).
 */
export function applyTrustDocument(state: TrustState, bytes: Uint8Array, limits?: Partial<TrustLimits>): { state: TrustState; applied: AppliedDocument } {
  if (isChain(bytes)) {
    const walk = walkTrustChain(state, decodeTrustChain(bytes, limits), limits);
    if (walk.error) throw walk.error;
    return { state: walk.state, applied: { kind: 'trust chain', version: walk.state.version, changed: walk.applied.length > 0 } };
  }
  const { kind } = decodeTrustDocument(bytes, undefined, limits);
  if (kind === TRUST_KIND.revocationList) {
    const r = applyRevocationList(state, bytes, limits);
    return { state: r.state, applied: { kind: 'revocation list', version: r.state.revocation.sequence, changed: r.changed } };
  }
  // A rotation or a transfer: the chain walk's rules (version order, skip what is held).
  const walk = walkTrustChain(state, [bytes], limits);
  if (walk.error) throw walk.error;
  if (walk.applied.length === 0) {
    throw new CoapfwError('TRUST_ROLLBACK', `trust: the device is at trust version ${state.version}; this ${kind === TRUST_KIND.ownerTransfer ? 'owner transfer' : 'trust update'} is not newer`);
  }
  return { state: walk.state, applied: { kind: kind === TRUST_KIND.ownerTransfer ? 'owner transfer' : 'trust update', version: walk.state.version, changed: true } };
}

/**
 * Apply `docs` in order to the device's trust (see the file comment) and
 * write the store once. On a refusal nothing is written, and the error
 * names the document (0-based) that was refused.
 */
export async function applyTrustDocuments(trust: DeviceTrust, docs: readonly Uint8Array[], limits?: Partial<TrustLimits>): Promise<AppliedDocument[]> {
  let state = trust.state;
  const done: AppliedDocument[] = [];
  for (const [i, doc] of docs.entries()) {
    try {
      const r = applyTrustDocument(state, doc, limits);
      state = r.state;
      done.push(r.applied);
    } catch (e) {
      if (!isCoapfwError(e) || docs.length === 1) throw e;
      throw new CoapfwError(e.code, `document ${i}: ${e.message}`, { cause: e });
    }
  }
  if (state !== trust.state) {
    await trust.store.write(state);
    trust.state = state;
  }
  return done;
}
