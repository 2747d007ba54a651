/**
 * Verification of a SUIT envelope before anything is fetched
 * (draft-ietf-suit-manifest-37 §6.2, RFC 9124 §4.3): authenticity under a
 * trust policy, the manifest digest, anti-rollback, and vendor/class
 * conditions against the device.
 */
import { CoapfwError } from '../errors.js';
import { decodeEnvelope } from './decode.js';
import { digestMatches } from './digest.js';
import type { SuitLimits } from './limits.js';
import { planUpdate, type DeviceIdentity } from './plan.js';
import { applyTrustPolicy, checkTrustPolicy, type TrustPolicy } from './trust.js';
import type { DecodedEnvelope, SuitManifest } from './types.js';

/** Options of `verifyEnvelope`. */
export interface VerifyOptions {
  /** Keys and signature rule. Required: an envelope without a valid signature is always rejected. */
  readonly trust: TrustPolicy;
  /** Sequence number of the installed manifest: the new one must be strictly greater (RFC 9124 §4.3.2). */
  readonly installedSequence?: bigint | number;
  /** Device vendor id (16-byte UUID): the manifest's vendor-identifier condition must match it. */
  readonly vendorId?: Uint8Array;
  /** Device class id (16-byte UUID): the manifest's class-identifier condition must match it. */
  readonly classId?: Uint8Array;
  /** Device id, for condition-device-identifier. */
  readonly deviceId?: Uint8Array;
  /**
   * When vendorId / classId is given, require the manifest to actually check
   * that condition (default true): a manifest that checks neither would
   * install on any kind of device.
   */
  readonly requireIdentityConditions?: boolean;
  readonly limits?: Partial<SuitLimits>;
}

/** A manifest that passed every check, with what was verified. */
export interface VerifiedManifest {
  readonly manifest: SuitManifest;
  readonly envelope: DecodedEnvelope;
  /** Indices into `trust.anchors` of the anchors whose signature verified. */
  readonly signedBy: readonly number[];
  readonly sequenceNumber: bigint;
}

/** An installed sequence number as a bigint, checked (INVALID_ARGUMENT). */
export function toBigSeq(v: bigint | number): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n) throw new CoapfwError('INVALID_ARGUMENT', `installedSequence: expected >= 0, got ${v}`);
    return v;
  }
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new CoapfwError('INVALID_ARGUMENT', `installedSequence: expected an integer 0..2^53-1 (use a bigint above), got ${v}`);
  }
  return BigInt(v);
}

/**
 * Decode and verify an envelope. Order: decode (bounded), signatures under the
 * trust policy over the digest, the digest over the bstr-wrapped manifest,
 * severed members (while decoding), anti-rollback, vendor/class conditions.
 * Throws a CoapfwError naming the failed check: SUIT_MALFORMED, SUIT_LIMIT,
 * SUIT_UNSUPPORTED, NO_SIGNATURE, UNTRUSTED_KEY, SIGNATURE_INVALID,
 * DIGEST_MISMATCH, ROLLBACK, VENDOR_MISMATCH, CLASS_MISMATCH, CONDITION_FAILED.
 *
 * @example
 * const trust = { anchors: [{ name: 'oem', publicKey: parsePublicKey(pem) }] };
 * const v = verifyEnvelope(bytes, { trust, installedSequence: 6n, vendorId, classId });
 */
export function verifyEnvelope(bytes: Uint8Array, opts: VerifyOptions): VerifiedManifest {
  if (!opts || !opts.trust) throw new CoapfwError('INVALID_ARGUMENT', 'verifyEnvelope: a trust policy is required');
  checkTrustPolicy(opts.trust);
  const installed = opts.installedSequence === undefined ? undefined : toBigSeq(opts.installedSequence);
  const env = decodeSignedEnvelope(bytes, opts.limits);
  const signedBy = applyTrustPolicy(env.signatures, env.digestBytes, opts.trust);
  checkManifestDigest(env);
  checkManifestConditions(env.manifest, opts, installed);
  return { manifest: env.manifest, envelope: env, signedBy, sequenceNumber: env.manifest.sequenceNumber };
}

/** Decode an envelope for verification: bounded, and authenticated by COSE_Sign1 only. */
export function decodeSignedEnvelope(bytes: Uint8Array, limits?: Partial<SuitLimits>): DecodedEnvelope {
  const env = decodeEnvelope(bytes, limits);
  if (env.signatures.length === 0 && env.otherAuthBlocks > 0) {
    throw new CoapfwError('SUIT_UNSUPPORTED', 'authentication: only COSE_Sign1 is supported (the envelope has COSE_Sign or COSE_Mac blocks)');
  }
  return env;
}

/** §8.3: the signed digest covers the manifest's bstr encoding, header included. DIGEST_MISMATCH otherwise. */
export function checkManifestDigest(env: DecodedEnvelope): void {
  if (!digestMatches(env.digest, env.manifestBstr)) {
    throw new CoapfwError('DIGEST_MISMATCH', 'manifest digest: the manifest does not match the signed digest');
  }
}

/** The checks after authentication: anti-rollback and the vendor/class/device conditions. */
export function checkManifestConditions(m: SuitManifest, opts: Omit<VerifyOptions, 'trust'>, installed: bigint | undefined): void {
  if (installed !== undefined && m.sequenceNumber <= installed) {
    throw new CoapfwError('ROLLBACK', `anti-rollback: sequence number ${m.sequenceNumber} is not greater than the installed ${installed}`);
  }
  if (opts.vendorId || opts.classId || opts.deviceId) {
    const device: DeviceIdentity = { vendorId: opts.vendorId, classId: opts.classId, deviceId: opts.deviceId };
    // Severed members the envelope does not carry are left out here: the
    // identity conditions live in the shared sequence, run before each sequence.
    const plan = planUpdate({ ...m, severed: {} }, device, opts.limits);
    if (opts.requireIdentityConditions !== false) {
      if (opts.vendorId && !plan.conditionsChecked.includes('vendor-identifier')) {
        throw new CoapfwError('VENDOR_MISMATCH', 'vendor-identifier: the manifest does not check the vendor id');
      }
      if (opts.classId && !plan.conditionsChecked.includes('class-identifier')) {
        throw new CoapfwError('CLASS_MISMATCH', 'class-identifier: the manifest does not check the class id');
      }
    }
  }
}
