/**
 * The update client's manifest check (the `verify` state of updater.ts):
 * under the device's trust store when the layout has one, after bringing it
 * up to date (trust-refresh.ts), else under the caller's fixed TrustPolicy
 * (the simple case, `verifyEnvelope`).
 *
 * With a trust store the envelope must satisfy every role of the refreshed
 * trust set that governs a component it touches, counted over the device's
 * own component table (suit/trust-verify.ts), so a vendor's key signs only
 * for that vendor's components and a revoked key counts for nothing.
 */
import { verifyFirmware } from '../suit/trust-verify.js';
import { verifyEnvelope, type VerifiedManifest } from '../suit/verify.js';
import type { UpdateSession } from './session.js';
import { checkSource, deviceComponents } from './trust-device.js';
import { refreshTrust } from './trust-refresh.js';

/** Refresh the trust (trust store devices) and verify `envelope`; throws what the verifiers throw. */
export async function verifyManifest(s: UpdateSession, envelope: Uint8Array): Promise<VerifiedManifest> {
  const { opts } = s;
  if (s.trust === undefined) return verifyEnvelope(envelope, { trust: opts.trust!, vendorId: opts.vendorId, classId: opts.classId });
  const r = await refreshTrust(s.trust, {
    request: opts.request,
    runtime: opts.runtime,
    manifestUri: opts.manifestUri,
    paths: opts.trustPaths,
    maxChainBytes: opts.maxTrustChainBytes,
    retry: opts.blockRetry,
    responseTimeoutMs: opts.responseTimeoutMs,
    signal: opts.signal,
  });
  s.emit({
    type: 'trust',
    version: r.state.version,
    revocationSequence: r.state.revocation.sequence,
    applied: r.applied,
    written: r.written,
    ...(r.chainError ? { chainError: r.chainError.code, chainMessage: r.chainError.message } : {}),
    ...(r.revocationError ? { revocationError: r.revocationError.code, revocationMessage: r.revocationError.message } : {}),
  });
  // An owner transfer in the chain may have moved the device to another server: ask that one next time.
  checkSource(r.state, opts.manifestUri);
  return verifyFirmware(envelope, { trust: r.state, components: deviceComponents(opts.layout, opts.components), vendorId: opts.vendorId, classId: opts.classId });
}
