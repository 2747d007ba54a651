/**
 * Key and code numbers of the SUIT manifest (draft-ietf-suit-manifest-37,
 * CDDL in Appendix A) and the COSE algorithm identifiers we accept (RFC 9053,
 * RFC 9864 for the fully-specified Ed25519 / ESP256).
 */

/** SUIT_Envelope keys (§8.2). Text keys in the envelope are integrated payloads (§7.5). */
export const ENVELOPE = {
  authenticationWrapper: 2,
  manifest: 3,
} as const;

/** CBOR tag of SUIT_Envelope_Tagged (§8.2) and of SUIT_Manifest_Tagged. */
export const TAG_ENVELOPE = 107;
export const TAG_MANIFEST = 1070;
/** COSE_Sign1_Tagged (RFC 9052 §4.2). */
export const TAG_COSE_SIGN1 = 18;

/** SUIT_Manifest keys (§8.4). */
export const MANIFEST = {
  version: 1,
  sequenceNumber: 2,
  common: 3,
  referenceUri: 4,
  validate: 7,
  load: 8,
  invoke: 9,
  payloadFetch: 16,
  install: 20,
  text: 23,
} as const;

/** Manifest members that may be severed (§8.4.11): name and key. */
export const SEVERABLE = [
  ['payloadFetch', MANIFEST.payloadFetch],
  ['install', MANIFEST.install],
  ['text', MANIFEST.text],
] as const;

/** SUIT_Common keys (§8.4.5). */
export const COMMON = { components: 2, sharedSequence: 4 } as const;

/** Condition codes (§8.4.9). */
export const CONDITION = {
  vendorId: 1,
  classId: 2,
  imageMatch: 3,
  componentSlot: 5,
  checkContent: 6,
  abort: 14,
  deviceId: 24,
} as const;

/** Directive codes (§8.4.10). */
export const DIRECTIVE = {
  setComponentIndex: 12,
  tryEach: 15,
  write: 18,
  overrideParameters: 20,
  fetch: 21,
  copy: 22,
  invoke: 23,
  swap: 31,
  runSequence: 32,
} as const;

/** Parameter keys (§8.4.8). */
export const PARAM = {
  vendorId: 1,
  classId: 2,
  imageDigest: 3,
  componentSlot: 5,
  strictOrder: 12,
  softFailure: 13,
  imageSize: 14,
  content: 18,
  uri: 21,
  sourceComponent: 22,
  invokeArgs: 23,
  deviceId: 24,
  fetchArguments: 25,
} as const;

/**
 * coapfw's own SUIT parameters. draft-ietf-suit-manifest-37 §8.4.8 reserves
 * negative keys for custom parameters (`suit-parameter-custom = nint`, value
 * int / bool / tstr / bstr), and the IANA "SUIT Parameters" registry keeps
 * keys below -255 for Private Use, so these can never collide with a
 * registered parameter. Other processors skip them as unknown parameters
 * (our decoder keeps them in `SuitParameters.other`). Both values are
 * `bstr .cbor` structures, so a parser can step over them without knowing
 * their contents (§8.4.8: "CBOR-encoded object parameters are still wrapped
 * in a bstr"). The numbers are ours: -25601 and -25602 (CBOR `39 6400`, `39 6401`).
 */
export const COAPFW_PARAM = {
  /** coapfw-block-digests: Merkle root over the image's per-block digests (src/suit/block-digests-param.ts). */
  blockDigests: -25601,
  /** coapfw-delta: the copy into this component applies its source component as a coapfw delta (src/suit/delta-manifest.ts). */
  delta: -25602,
} as const;

/** SUIT_Text keys (§8.4.4). */
export const TEXT = {
  manifestDescription: 1,
  updateDescription: 2,
  manifestJsonSource: 3,
  manifestYamlSource: 4,
} as const;
export const TEXT_COMPONENT = {
  vendorName: 1,
  modelName: 2,
  vendorDomain: 3,
  modelInfo: 4,
  componentDescription: 5,
  componentVersion: 6,
} as const;

/** COSE algorithm identifiers. */
export const ALG = {
  sha256: -16,
  /** EdDSA (RFC 9053), polymorphic; older SUIT tools write it for Ed25519. */
  eddsa: -8,
  /** Ed25519, fully specified (RFC 9864); what we sign with. */
  ed25519: -19,
  /** ES256 (RFC 9053): ECDSA P-256 with SHA-256. */
  es256: -7,
  /** ESP256, fully specified (RFC 9864): same math as ES256. */
  esp256: -9,
} as const;

/** COSE header labels (RFC 9052 §3.1). */
export const HEADER = { alg: 1, crit: 2, contentType: 3, kid: 4 } as const;

/**
 * CBOR tag of a coapfw trust document (trust update, revocation list, owner
 * transfer; see trust-document.ts): 0x63667472, 'cftr' in ASCII, from the
 * first-come-first-served range of RFC 8949 §9.2 (not registered with IANA).
 * A SUIT envelope is tag 107 around a map; a trust document is this tag
 * around an array, so neither decodes as the other.
 */
export const TAG_TRUST_DOCUMENT = 0x63667472;

/** Kinds of trust document; each kind is also bound into its signatures' external AAD. */
export const TRUST_KIND = { trustUpdate: 1, revocationList: 2, ownerTransfer: 3 } as const;

/** COSE content type (protected header label 3, RFC 9052 §3.1) of every trust document signature. */
export const TRUST_CONTENT_TYPE = 'application/coapfw-trust+cbor';

const CONDITION_NAMES: Record<number, string> = {
  1: 'vendor-identifier',
  2: 'class-identifier',
  3: 'image-match',
  5: 'component-slot',
  6: 'check-content',
  14: 'abort',
  24: 'device-identifier',
};
const DIRECTIVE_NAMES: Record<number, string> = {
  12: 'set-component-index',
  15: 'try-each',
  18: 'write',
  20: 'override-parameters',
  21: 'fetch',
  22: 'copy',
  23: 'invoke',
  31: 'swap',
  32: 'run-sequence',
};

/** Human-readable name of a command code, as the draft spells it. */
export function commandName(code: number): string {
  const c = CONDITION_NAMES[code];
  if (c !== undefined) return `condition-${c}`;
  const d = DIRECTIVE_NAMES[code];
  if (d !== undefined) return `directive-${d}`;
  return `command-${code}`;
}

/** True for the codes of conditions (§8.4.9). */
export function isConditionCode(code: number): boolean {
  return CONDITION_NAMES[code] !== undefined;
}
