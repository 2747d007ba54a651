/**
 * From a verified manifest to the images the update client writes, with what
 * the device knows about itself: the images it has installed (so the
 * planner can evaluate a delta's source check before anything is fetched,
 * suit/plan.ts), whether it applies deltas (not on a single-bank device:
 * a delta needs the old image intact while the new one is written), and
 * for each image its per-block digests.
 *
 * A manifest's differential alternative (suit/delta-manifest.ts) plans as a
 * fetch of the delta component and a copy with coapfw-delta into the image
 * component; the device fuses the two into one image built from the delta
 * (device/delta-apply.ts: the delta is never stored), with the manifest's
 * full-image alternative as its fallback.
 */
import { CoapfwError } from '../errors.js';
import { ALG } from '../suit/constants.js';
import { planUpdate, type DeviceIdentity, type PlannedImage, type UpdatePlan } from '../suit/plan.js';
import type { DecodedEnvelope, SuitManifest } from '../suit/types.js';
import { digestsLayout } from '../suit/block-digests.js';
import { stagingCapacity } from '../flash/staging.js';
import { readBootState } from './boot.js';
import { checkDigestsUsable } from './block-auth.js';
import { candidateImages, layoutComponent, type CandidateImage } from './candidate.js';
import { fetchTargets } from './fetch-target.js';
import type { UpdateOptions } from './states.js';

/** The device as the planner sees it: identity, the slot it writes, its installed images, delta support. */
export async function deviceIdentity(opts: UpdateOptions): Promise<DeviceIdentity> {
  const { layout } = opts;
  const state = await readBootState(opts.flash, layout);
  return {
    vendorId: opts.vendorId,
    classId: opts.classId,
    // The slot the device writes (WG example 3): the secondary, or the only one of a single bank.
    componentSlot: layout.recovery ? 0 : 1,
    installed: (id) => {
      let c: number;
      try {
        c = layoutComponent(layout, id);
      } catch {
        return undefined; // not a component of this device: nothing to say about it
      }
      const img = state?.components[c]?.primary;
      return img ? { digest: { alg: ALG.sha256, bytes: img.digest }, size: img.size } : null;
    },
    applyDeltas: layout.recovery === undefined,
  };
}

/** The copies of `plan` that apply a delta, each with the fetch of the delta it applies. */
function deltaSteps(plan: UpdatePlan): { copy: PlannedImage; fetch: PlannedImage }[] {
  return plan.images.flatMap((copy) => {
    if (copy.action !== 'copy' || copy.delta === undefined) return [];
    const fetch = plan.images.find((f) => f.action === 'fetch' && f.componentIndex === copy.sourceComponent);
    if (fetch === undefined) throw new CoapfwError('SUIT_UNSUPPORTED', `manifest: the delta copied into component ${copy.componentIndex} is not fetched`);
    return [{ copy, fetch }];
  });
}

/**
 * Every image `plan` installs on this device, in component order; see the
 * file comment. Throws what `fetchTargets` and `candidateImages` throw, and
 * SUIT_UNSUPPORTED / TOO_LARGE for what a single-bank device cannot install
 * in place (before anything is written).
 */
export function updateImages(plan: UpdatePlan, manifest: SuitManifest, identity: DeviceIdentity, opts: UpdateOptions, envelope: DecodedEnvelope, envelopeBytes: number): CandidateImage[] {
  const deltas = deltaSteps(plan);
  const fused = new Set(deltas.map((d) => d.fetch));
  // A delta's copy is checked like a fetch of the delta's URI: the image-match checks after it name the target.
  const steps = [...plan.images.filter((i) => i.action === 'fetch' && !fused.has(i)), ...deltas.map((d) => ({ ...d.copy, action: 'fetch' as const, uri: d.fetch.uri }))];
  const targets = fetchTargets({ ...plan, images: steps });
  const placed = candidateImages(targets, opts.layout, opts.manifestUri, envelope);
  // candidateImages sorts by layout component; fetchTargets kept the order of `steps`.
  const stepOf = new Map(targets.map((t, k) => [layoutComponent(opts.layout, t.componentId), steps[k]!]));
  const images = placed.map((img) => withAuth(img, stepOf.get(img.component)!, opts));
  if (deltas.length > 0) {
    if (images.length !== 1) throw new CoapfwError('SUIT_UNSUPPORTED', 'manifest: a delta may only update a set of one image here');
    const fallback = fullImage(manifest, identity, opts, envelope);
    const d = deltas[0]!;
    const delta = fetchTargets({ ...plan, images: [d.fetch] })[0]!;
    const src = candidateImages([{ ...delta, componentId: d.copy.componentId }], opts.layout, opts.manifestUri, envelope)[0]!.source;
    if (src.kind !== 'fetch') throw new CoapfwError('SUIT_UNSUPPORTED', 'manifest: a delta must be fetched, not integrated in the envelope');
    const img = images[0]!;
    images[0] = {
      ...img,
      source: { kind: 'delta', options: src.options, digest: delta.digest, size: delta.size, frameSize: d.copy.delta!.frameSize, ...(d.fetch.blockDigests ? { auth: d.fetch.blockDigests } : {}), ...(fallback ? { fallback } : {}) },
    };
  }
  if (opts.layout.recovery) checkInPlace(images, opts, envelopeBytes);
  return images;
}

/** The image with its block digests when this device can use them; single bank needs them (checkInPlace). */
function withAuth(img: CandidateImage, step: PlannedImage, opts: UpdateOptions): CandidateImage {
  const info = step.blockDigests;
  if (info === undefined) return img;
  if (info.imageSize !== img.size) throw new CoapfwError('SUIT_MALFORMED', `manifest: block digests cover ${info.imageSize} bytes, the image-match checks say ${img.size}`);
  try {
    checkDigestsUsable(opts, info, opts.flash.writeAlignment);
  } catch (e) {
    // A/B: the whole image is still checked before it is installed; single bank refuses below.
    if (opts.layout.recovery) throw e;
    return img;
  }
  return { ...img, auth: info };
}

/** The manifest's full-image alternative of the same component (planned as a device without deltas), if any. */
function fullImage(manifest: SuitManifest, identity: DeviceIdentity, opts: UpdateOptions, envelope: DecodedEnvelope): CandidateImage | undefined {
  let plan: UpdatePlan;
  try {
    plan = planUpdate(manifest, { ...identity, applyDeltas: false });
  } catch {
    return undefined; // the manifest offers nothing but the delta
  }
  const steps = plan.images.filter((i) => i.action === 'fetch');
  if (steps.length !== 1) return undefined;
  const img = candidateImages(fetchTargets({ ...plan, images: steps }), opts.layout, opts.manifestUri, envelope)[0]!;
  return withAuth(img, steps[0]!, opts);
}

/**
 * A single-bank device overwrites the image it runs, so only with blocks it
 * can check before writing them, and only when the manifest and the digest
 * top list fit its recovery area (so the recovery loader can finish the job).
 */
function checkInPlace(images: readonly CandidateImage[], opts: UpdateOptions, envelopeBytes: number): void {
  const img = images[0]!;
  if (images.length !== 1) throw new CoapfwError('SUIT_UNSUPPORTED', 'manifest: a single-bank device installs one image');
  if (img.auth === undefined) {
    throw new CoapfwError('SUIT_UNSUPPORTED', 'manifest: a single-bank device overwrites its image in place only with blocks it can authenticate first; the manifest has no block digests');
  }
  const need = envelopeBytes + 32 * digestsLayout(img.auth).pages;
  const have = stagingCapacity(opts.layout.recovery!.staging, opts.flash.writeAlignment);
  if (need > have) throw new CoapfwError('TOO_LARGE', `manifest: envelope and digest top list take ${need} bytes, the recovery area holds ${have}`);
}
