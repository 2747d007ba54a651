/**
 * SUIT manifests (draft-ietf-suit-manifest-37, RFC 9019, RFC 9124): pure
 * decode, verify, plan, encode and sign. No I/O.
 *
 * Device side:
 * ```ts
 * const trust: TrustPolicy = { anchors: [{ name: 'oem', publicKey: parsePublicKey(pemText) }] };
 * const v = verifyEnvelope(bytes, { trust, installedSequence: stored.seq, vendorId, classId });
 * const plan = planUpdate(v.manifest, { vendorId, classId, componentSlot: inactiveSlot });
 * for (const img of plan.images) {            // in order: payload-fetch, install, load
 *   const data = await fetchBlockwise(img.uri!); // img.size bytes expected
 *   for (const c of img.checks) checkImage(data, c); // DIGEST_MISMATCH if wrong
 * }
 * // then persist v.sequenceNumber (bigint) as the installed sequence
 * ```
 * Trust that can change (rotation, revocation, owner transfer): keep a
 * `TrustState` (flash/trust-store.ts persists it), verify firmware with
 * `verifyFirmware(bytes, { trust: state, ... })`, and move the state on with
 * `walkTrustChain`, `applyRevocationList` and `applyOwnerTransfer`.
 * `verifyEnvelope` with a fixed `TrustPolicy` stays the simple case.
 *
 * Server side: `createEnvelope({ sequence, vendorId, classId, uri, digest, size }, [key])`,
 * or `compileManifest(withImages(json, (file) => bytes))` + `createSignedEnvelope(manifest, keys, { sever })`
 * for the WG's JSON input format (`describeImage(bytes)` gives digest, size and content address); `addSignatures` to countersign.
 */
export { DEFAULT_SUIT_LIMITS, suitLimits, type SuitLimits } from './limits.js';
export type {
  ComponentId,
  CoseSign1,
  DecodedEnvelope,
  SeverableMember,
  SuitCommand,
  SuitComponentText,
  SuitDigest,
  SuitManifest,
  SuitParameters,
  SuitTextLang,
} from './types.js';
export { decodeEnvelope, decodeManifest } from './decode.js';
export { computeDigest, digestMatches, checkImage } from './digest.js';
export {
  parsePublicKey,
  parsePrivateKey,
  publicKeyFromBytes,
  privateKeyFromSecret,
  encodeCoseKey,
  publicKeyToPem,
  privateKeyToPem,
  type SuitPublicKey,
  type SuitPrivateKey,
} from './keys.js';
export { signSign1, verifySign1, type SignOptions } from './cose.js';
export { applyTrustPolicy, checkTrustPolicy, type TrustAnchor, type TrustPolicy, type TrustRule } from './trust.js';
export { verifyEnvelope, type VerifyOptions, type VerifiedManifest } from './verify.js';
export {
  DEFAULT_TRUST_LIMITS,
  checkTrustSet,
  checkTrustState,
  initialTrustState,
  isRevoked,
  keyThumbprint,
  trustLimits,
  trustRole,
  type RevocationState,
  type TrustAnchorEntry,
  type TrustLimits,
  type TrustRole,
  type TrustScope,
  type TrustSet,
  type TrustState,
} from './trust-set.js';
export { decodeTrustState, encodeTrustState, TRUST_STATE_FORMAT } from './trust-codec.js';
export { decodeTrustDocument, signTrustDocument, trustKindName, type TrustDocument, type TrustDocumentKind } from './trust-document.js';
export { touchedComponents, type DeviceComponent, type TouchedComponent } from './trust-scope.js';
export type { RoleTally } from './trust-match.js';
export { verifyFirmware, trustStateFromPolicy, type FirmwareVerifyOptions, type FirmwareVerified } from './trust-verify.js';
export { applyTrustUpdate, createTrustUpdate, decodeTrustUpdate, trustChange, type DecodedTrustUpdate, type TrustChange } from './trust-update.js';
export { applyRevocationList, createRevocationList, decodeRevocationList, type RevocationList, type RevocationResult } from './revocation.js';
export { applyOwnerTransfer, createOwnerTransfer, decodeOwnerTransfer, type OwnerTransfer } from './owner.js';
export { decodeTrustChain, encodeTrustChain, walkTrustChain, type ChainWalk } from './trust-chain.js';
export { planUpdate, type DeviceIdentity, type ImageCheck, type InstalledImage, type PlannedImage, type PlanSequence, type UpdatePlan } from './plan.js';
export { encodeManifest, createSignedEnvelope, addSignatures, assembleEnvelope, manifestDigest, type EnvelopeOptions, type ManifestInput } from './encode.js';
export { compileManifest, type JsonManifest, type JsonComponent, type JsonDigest } from './compile.js';
export { checkManifestJson, checkImageUri } from './json-input.js';
export { describeImage, imageFiles, withImages, type ImageDescription } from './image-input.js';
export { parseUuid, formatUuid } from './uuid.js';
export { createEnvelope, type SingleImageManifest } from './create.js';
export { describeEnvelope, summarizeEnvelope, type EnvelopeSummary } from './describe.js';
export { commandName, COAPFW_PARAM, TAG_TRUST_DOCUMENT, TRUST_CONTENT_TYPE, TRUST_KIND } from './constants.js';
export type { BlockDigestsInfo } from './types.js';
export {
  buildBlockDigests,
  digestsLayout,
  leafHash,
  nodeHash,
  pageRoot,
  topListRoot,
  MerkleRootBuilder,
  DIGEST_BYTES,
  type BlockDigests,
  type BuildBlockDigestsOptions,
  type DigestsLayout,
} from './block-digests.js';
export { encodeBlockDigests, decodeBlockDigests, blockDigestsParameter, blockDigestsOf } from './block-digests-param.js';
export { withBlockDigests, type ImageBlockDigests } from './with-block-digests.js';
export { BlockVerifier, type BlockVerifierOptions, type ByteRange } from './block-verifier.js';
export { mergeParameters } from './parameters.js';
export {
  DELTA_COMPONENT_ID,
  DELTA_FORMAT_CFD1,
  deltaParameter,
  decodeDeltaParam,
  deltaInstallSequence,
  findDeltaAlternative,
  type DeltaAlternative,
  type DeltaManifestInput,
  type DeltaParam,
} from './delta-manifest.js';
