/**
 * The signed envelope of every trust document: trust updates (rotation),
 * revocation lists and owner transfers.
 *
 * ```cddl
 * trust-document = #6.1667658866([          ; TAG_TRUST_DOCUMENT, 'cftr'
 *   kind: uint,                            ; 1 trust update, 2 revocation list, 3 owner transfer
 *   body: bstr .cbor any,                  ; what the signatures cover, byte for byte
 *   signatures: [* bstr .cbor COSE_Sign1_Tagged],
 * ])
 * ```
 * Each COSE_Sign1 (RFC 9052 §4.2) has a detached payload (the body bytes),
 * protected header {1: alg, 3: "application/coapfw-trust+cbor"} and external
 * AAD `["coapfw-trust", kind]` (RFC 9052 §4.3). So a document can never be
 * taken for another: a SUIT envelope is a map under tag 107 and its
 * signatures have an empty AAD, so a signature lifted from one kind of
 * document into another, or between a manifest and a trust document, never
 * verifies; and each decoder refuses the other's bytes with DOCUMENT_TYPE.
 */
import { CoapfwError } from '../errors.js';
import { bstr, decodeCbor, encodeCbor, leadingTag, tagged } from './cbor.js';
import { TAG_ENVELOPE, TAG_TRUST_DOCUMENT, TRUST_CONTENT_TYPE, TRUST_KIND } from './constants.js';
import { signSign1 } from './cose.js';
import { decodeSign1 } from './decode.js';
import type { SuitPrivateKey } from './keys.js';
import { suitLimits } from './limits.js';
import { matchSignatures, type SignatureCandidate, type SignatureMatch } from './trust-match.js';
import { keyThumbprint, trustLimits, type TrustLimits } from './trust-set.js';
import type { CoseSign1 } from './types.js';
import { asArray, asBytes, asUint, malformed } from './values.js';

/** A kind of trust document. */
export type TrustDocumentKind = (typeof TRUST_KIND)[keyof typeof TRUST_KIND];

const KIND_NAMES: Record<TrustDocumentKind, string> = { 1: 'trust update', 2: 'revocation list', 3: 'owner transfer' };

/** Human name of a document kind. */
export function trustKindName(kind: TrustDocumentKind): string {
  return KIND_NAMES[kind];
}

/** A decoded, not yet verified trust document. */
export interface TrustDocument {
  readonly kind: TrustDocumentKind;
  /** The signed body, exactly as carried. */
  readonly body: Uint8Array;
  readonly signatures: readonly CoseSign1[];
}

/** External AAD of a document kind's signatures. */
export function trustAad(kind: TrustDocumentKind): Uint8Array {
  return encodeCbor(['coapfw-trust', kind]);
}

/** Assemble a document from its body and encoded COSE_Sign1 signatures. */
export function encodeTrustDocument(kind: TrustDocumentKind, body: Uint8Array, signatures: readonly Uint8Array[] = []): Uint8Array {
  return encodeCbor(tagged(TAG_TRUST_DOCUMENT, [kind, bstr(body), signatures.map((s) => bstr(s))]));
}

function isKind(n: number): n is TrustDocumentKind {
  return n === TRUST_KIND.trustUpdate || n === TRUST_KIND.revocationList || n === TRUST_KIND.ownerTransfer;
}

/**
 * Decode a trust document (structure only; nothing is verified). Throws
 * DOCUMENT_TYPE for a SUIT envelope or another kind than `expect`,
 * SUIT_MALFORMED, SUIT_LIMIT or SUIT_UNSUPPORTED.
 */
export function decodeTrustDocument(bytes: Uint8Array, expect?: TrustDocumentKind, limits?: Partial<TrustLimits>): TrustDocument {
  const lim = trustLimits(limits);
  if (!(bytes instanceof Uint8Array)) throw new CoapfwError('INVALID_ARGUMENT', 'trust document: expected a Uint8Array');
  if (bytes.length > lim.maxDocumentBytes) throw new CoapfwError('SUIT_LIMIT', `trust document: ${bytes.length} bytes exceeds ${lim.maxDocumentBytes}`);
  const head = leadingTag(bytes);
  if (head?.tag !== TAG_TRUST_DOCUMENT) {
    // A SUIT_Envelope is a map, tagged 107 or not (draft-ietf-suit-manifest §8.2).
    if (head?.tag === TAG_ENVELOPE || (bytes.length > 0 && bytes[0]! >> 5 === 5)) {
      throw new CoapfwError('DOCUMENT_TYPE', 'trust document: these bytes are a SUIT envelope, not a trust document');
    }
    throw malformed(`trust document: expected CBOR tag ${TAG_TRUST_DOCUMENT}`);
  }
  const suitLim = suitLimits({ maxSignatures: lim.maxSignatures });
  const a = asArray(decodeCbor(bytes.subarray(head.contentStart), suitLim, 'trust document'), 'trust document');
  if (a.length !== 3) throw malformed('trust document: expected [kind, body, signatures]');
  const kind = asUint(a[0], 'trust document kind');
  if (!isKind(kind)) throw new CoapfwError('SUIT_UNSUPPORTED', `trust document: unknown kind ${kind}`);
  if (expect !== undefined && kind !== expect) {
    throw new CoapfwError('DOCUMENT_TYPE', `trust document: this is a ${trustKindName(kind)}, not a ${trustKindName(expect)}`);
  }
  const body = asBytes(a[1], 'trust document body');
  const sigsV = asArray(a[2], 'trust document signatures');
  if (sigsV.length > lim.maxSignatures) throw new CoapfwError('SUIT_LIMIT', `trust document: ${sigsV.length} signatures exceeds ${lim.maxSignatures}`);
  const signatures = sigsV.map((s, i) => {
    const sig = decodeSign1(asBytes(s, `trust document signature ${i}`), suitLim, `trust document signature ${i}`);
    if (sig === undefined) throw new CoapfwError('SUIT_UNSUPPORTED', `trust document signature ${i}: only COSE_Sign1 is supported`);
    return sig;
  });
  return { kind, body, signatures };
}

/**
 * Add one signature per key to a document (multi-party signing: each party
 * signs the same body bytes in turn). The body is never re-encoded.
 */
export function signTrustDocument(bytes: Uint8Array, keys: readonly SuitPrivateKey[], limits?: Partial<TrustLimits>): Uint8Array {
  const doc = decodeTrustDocument(bytes, undefined, limits);
  const lim = trustLimits(limits);
  if (doc.signatures.length + keys.length > lim.maxSignatures) {
    throw new CoapfwError('SUIT_LIMIT', `trust document: ${doc.signatures.length + keys.length} signatures would exceed ${lim.maxSignatures}`);
  }
  const head = leadingTag(bytes)!;
  const existing = asArray(decodeCbor(bytes.subarray(head.contentStart), suitLimits(), 'trust document'), 'trust document')[2] as Uint8Array[];
  const aad = trustAad(doc.kind);
  // kid: the RFC 9679 thumbprint, so a verifier tries one key per signature (trust-match.ts).
  const added = keys.map((k) => signSign1(doc.body, k, { externalAad: aad, contentType: TRUST_CONTENT_TYPE, kid: keyThumbprint(k.publicKey) }));
  return encodeTrustDocument(doc.kind, doc.body, [...existing.map((s) => asBytes(s, 'signature')), ...added]);
}

/**
 * Which candidate keys (a trust set's anchors, or the owner key) made valid
 * signatures over the document. Only signatures declaring the trust content
 * type are tried.
 */
export function matchTrustDocument(doc: TrustDocument, candidates: readonly SignatureCandidate[], memo?: Map<string, boolean>): SignatureMatch {
  const sigs = doc.signatures.filter((s) => s.contentType === TRUST_CONTENT_TYPE);
  const m = matchSignatures(sigs, doc.body, candidates, trustAad(doc.kind), memo);
  return { ...m, untrusted: m.untrusted + doc.signatures.length - sigs.length };
}
