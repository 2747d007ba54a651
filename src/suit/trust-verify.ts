/**
 * Verification of a firmware envelope against a trust state: the envelope's
 * signatures must satisfy every role that governs every component the
 * manifest touches (trust-scope.ts), counting only signers of that role
 * whose keys are not revoked. The rest is `verifyEnvelope`'s: digest,
 * anti-rollback, vendor/class conditions (draft-ietf-suit-manifest-37 §6.2).
 */
import { CoapfwError } from '../errors.js';
import { matchSignatures, requireRole, tallyRole, type RoleTally } from './trust-match.js';
import { componentLabel, rolesFor, touchedComponents, type DeviceComponent } from './trust-scope.js';
import { checkTrustState, type TrustAnchorEntry, type TrustState } from './trust-set.js';
import { checkTrustPolicy, type TrustPolicy } from './trust.js';
import {
  checkManifestConditions,
  checkManifestDigest,
  decodeSignedEnvelope,
  toBigSeq,
  type VerifiedManifest,
  type VerifyOptions,
} from './verify.js';

/** Options of {@link verifyFirmware}: those of `verifyEnvelope`, with a trust state for the policy. */
export interface FirmwareVerifyOptions extends Omit<VerifyOptions, 'trust'> {
  /** The device's trust state (anchors, roles, revocation list). */
  readonly trust: TrustState;
  /**
   * The device's own components and their vendor/class ids. When given, a
   * manifest component the device does not have is refused, and the
   * device's ids join the manifest's for choosing roles: a manifest cannot
   * move a component out of its vendor's role by claiming another vendor id.
   */
  readonly components?: readonly DeviceComponent[];
}

/** A manifest that passed, with the roles that authorised it. */
export interface FirmwareVerified extends VerifiedManifest {
  /** Per touched component and governing role: whose signatures counted. */
  readonly roles: readonly (RoleTally & { readonly componentIndex: number })[];
}

/**
 * Decode and verify a firmware envelope under a trust state. Throws what
 * `verifyEnvelope` throws, and: DOCUMENT_TYPE (a trust document),
 * UNTRUSTED_KEY (no signature by any key of the set, e.g. a rotated-out
 * key), TRUST_NO_POLICY (a component no role governs), KEY_NOT_AUTHORIZED
 * (signed only by anchors not bound to the component), KEY_REVOKED
 * (satisfied only with revoked keys), TRUST_THRESHOLD (too few signers).
 *
 * @example
 * const v = verifyFirmware(bytes, { trust: store.state(), installedSequence: 6n, vendorId, classId });
 */
export function verifyFirmware(bytes: Uint8Array, opts: FirmwareVerifyOptions): FirmwareVerified {
  if (!opts || !opts.trust) throw new CoapfwError('INVALID_ARGUMENT', 'verifyFirmware: a trust state is required');
  checkTrustState(opts.trust);
  const trust = opts.trust;
  const installed = opts.installedSequence === undefined ? undefined : toBigSeq(opts.installedSequence);
  const env = decodeSignedEnvelope(bytes, opts.limits);
  if (env.signatures.length === 0) throw new CoapfwError('NO_SIGNATURE', 'authentication: the envelope carries no signature');
  const match = matchSignatures(env.signatures, env.digestBytes, trust.anchors);
  if (match.signedBy.size === 0) {
    throw new CoapfwError('UNTRUSTED_KEY', `signature: none of the ${env.signatures.length} signature(s) was made by a key of trust version ${trust.version}`);
  }
  checkManifestDigest(env);
  const touched = touchedComponents(env.manifest, opts.components);
  if (touched.length === 0) throw new CoapfwError('TRUST_NO_POLICY', 'trust: the manifest declares no components, so no role can authorise it');
  const roles: FirmwareVerified['roles'][number][] = [];
  for (const c of touched) {
    for (const role of rolesFor(trust, c)) {
      const t = tallyRole(role, trust, match, trust.revocation);
      requireRole(t, `manifest component ${componentLabel(c.componentId)}`);
      roles.push({ ...t, componentIndex: c.index });
    }
  }
  checkManifestConditions(env.manifest, opts, installed);
  return { manifest: env.manifest, envelope: env, signedBy: [...match.signedBy], sequenceNumber: env.manifest.sequenceNumber, roles };
}

/**
 * The simple policy as a trust state: one role over every component whose
 * signers are the anchors (any-of), or the `allOf` names (all-of); version
 * 0, no trust role (so no rotation), no revocation. Anchors without a name
 * are called `anchor-<i>`. Key ids of the simple policy are not carried.
 */
export function trustStateFromPolicy(policy: TrustPolicy): TrustState {
  checkTrustPolicy(policy);
  const taken = new Set(policy.anchors.map((a) => a.name).filter((n) => n !== undefined));
  const anchors: TrustAnchorEntry[] = policy.anchors.map((a, i) => {
    if (a.name !== undefined) return { name: a.name, publicKey: a.publicKey };
    let name = `anchor-${i}`;
    while (taken.has(name)) name = `_${name}`;
    taken.add(name);
    return { name, publicKey: a.publicKey };
  });
  const rule = policy.rule ?? { kind: 'any' };
  const signers = rule.kind === 'any' ? anchors.map((a) => a.name) : [...rule.names];
  const threshold = rule.kind === 'any' ? 1 : signers.length;
  const state: TrustState = {
    version: 0,
    anchors,
    roles: [{ name: 'firmware', scope: { kind: 'any-component' }, signers, threshold }],
    revocation: { sequence: 0, revoked: [] },
  };
  checkTrustState(state);
  return state;
}
