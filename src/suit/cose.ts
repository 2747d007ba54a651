/**
 * COSE_Sign1 with a detached payload (RFC 9052 §4.2, §4.4) as SUIT uses it
 * (draft-ietf-suit-manifest-37 §8.3): the payload is the encoded SUIT_Digest.
 * Ed25519 and ECDSA P-256 on @noble/curves. Its ed25519 carries its own
 * SHA-512, so nothing here touches another library's module state: a host
 * process that also uses @noble/ed25519 keeps whatever it configured there.
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { p256 } from '@noble/curves/nist.js';
import { CoapfwError } from '../errors.js';
import { bstr, encodeCbor, tagged } from './cbor.js';
import { ALG, HEADER, TAG_COSE_SIGN1 } from './constants.js';
import type { SuitPrivateKey, SuitPublicKey } from './keys.js';
import type { CoseSign1 } from './types.js';

/** Which key type an algorithm needs, or undefined for an algorithm we do not support. */
export function keyTypeOfAlg(alg: number): SuitPublicKey['type'] | undefined {
  if (alg === ALG.ed25519 || alg === ALG.eddsa) return 'ed25519';
  if (alg === ALG.es256 || alg === ALG.esp256) return 'p256';
  return undefined;
}

const NO_AAD = new Uint8Array(0);

/**
 * Sig_structure for COSE_Sign1 (RFC 9052 §4.4). SUIT uses an empty external
 * AAD; trust documents bind their kind into it (trust-document.ts), so a
 * signature made for one kind of document never verifies as another.
 */
export function sigStructure(protectedBytes: Uint8Array, payload: Uint8Array, externalAad: Uint8Array = NO_AAD): Uint8Array {
  return encodeCbor(['Signature1', bstr(protectedBytes), bstr(externalAad), bstr(payload)]);
}

/**
 * Verify one COSE_Sign1 over the detached `payload` with `key` (and the
 * external AAD, empty for SUIT). False on a wrong signature; throws
 * SUIT_UNSUPPORTED for an algorithm we do not know.
 */
export function verifySign1(sig: CoseSign1, payload: Uint8Array, key: SuitPublicKey, externalAad: Uint8Array = NO_AAD): boolean {
  const type = keyTypeOfAlg(sig.alg);
  if (type === undefined) throw new CoapfwError('SUIT_UNSUPPORTED', `COSE algorithm ${sig.alg} is not supported`);
  if (type !== key.type) return false;
  const msg = sigStructure(sig.protectedBytes, payload, externalAad);
  try {
    // RFC 8032 §5.1.7 verification with the ZIP-215 acceptance rules (the library's default).
    if (type === 'ed25519') return ed25519.verify(sig.signature, msg, key.bytes);
    // RFC 9053 §2.1: ECDSA signatures carry no low-S rule, and other SUIT tools (the WG's
    // examples among them) write high-S ones, so accept both; prehash = SHA-256 (ES256).
    return p256.verify(sig.signature, msg, key.bytes, { lowS: false, prehash: true });
  } catch {
    return false; // malformed signature or point encoding
  }
}

/** Options for signing. */
export interface SignOptions {
  /** COSE alg: Ed25519 keys default to -19 (Ed25519), P-256 keys to -7 (ES256, the widest supported). */
  readonly alg?: number;
  /** Key id to put in the unprotected header (label 4); defaults to the key's own `kid`. */
  readonly kid?: Uint8Array;
  /** External AAD of the Sig_structure (RFC 9052 §4.3); empty for SUIT. */
  readonly externalAad?: Uint8Array;
  /** Content type for the protected header (label 3, RFC 9052 §3.1); none for SUIT. */
  readonly contentType?: string;
}

/** Make a tagged COSE_Sign1 with detached payload over `payload`; returns its encoding. */
export function signSign1(payload: Uint8Array, key: SuitPrivateKey, opts: SignOptions = {}): Uint8Array {
  const alg = opts.alg ?? (key.type === 'ed25519' ? ALG.ed25519 : ALG.es256);
  if (keyTypeOfAlg(alg) !== key.type) {
    throw new CoapfwError('KEY_INVALID', `COSE algorithm ${alg} cannot be used with a ${key.type} key`);
  }
  const prot = new Map<number, unknown>([[HEADER.alg, alg]]);
  if (opts.contentType !== undefined) prot.set(HEADER.contentType, opts.contentType);
  const protectedBytes = encodeCbor(prot);
  const msg = sigStructure(protectedBytes, payload, opts.externalAad);
  const signature = key.type === 'ed25519' ? ed25519.sign(msg, key.secret) : p256.sign(msg, key.secret, { prehash: true });
  const kid = opts.kid ?? key.kid;
  const unprotected = kid ? new Map([[HEADER.kid, bstr(kid)]]) : new Map();
  return encodeCbor(tagged(TAG_COSE_SIGN1, [bstr(protectedBytes), unprotected, null, bstr(signature)]));
}
