/**
 * Which images the update client fetches and what each must match, from a
 * SUIT plan (suit/plan.ts): one per component the manifest fetches into
 * (the WG's example 5: two components, each with its own digest and URI). The digest and size the device checks come from the
 * manifest's image-match conditions that follow the fetch
 * (draft-ietf-suit-manifest-37 §8.4.9.2), not from the parameters in effect
 * at the fetch directive (§8.4.10.4): a fetch verifies nothing by itself, and
 * a manifest may set (or change) the digest after the fetch and only then
 * check image-match.
 */
import { CoapfwError } from '../errors.js';
import { ALG } from '../suit/constants.js';
import type { PlannedImage, UpdatePlan } from '../suit/index.js';
import type { ComponentId } from '../suit/types.js';
import { equalBytes } from '@noble/curves/utils.js';

/** An image the device fetches into a component's secondary slot, and what it must match. */
export interface FetchTarget {
  /** Index of the component in the manifest's component list. */
  readonly componentIndex: number;
  readonly componentId: ComponentId;
  /** suit-parameter-uri at the fetch; `#name` names an integrated payload of the envelope (§7.5). */
  readonly uri: string;
  /** SHA-256 every image-match check after the fetch states. */
  readonly digest: Uint8Array;
  /** Image size the image-match checks state: the image's exact size and the cut-off for endless data. */
  readonly size: number;
}

const SHA256_SIZE = 32;

/**
 * Every fetch of `plan` with its image-match checks, each reduced to one
 * digest and size. Requires at least one fetch, at most one per component,
 * each with a URI and at least one image-match check after it; every check
 * must carry a SHA-256 digest, at least one must state the size, and all of
 * one image must agree (an image can only match all of them if they name the
 * same digest and size, so checking the slot against the common digest and
 * size checks it against every one).
 * Throws `SUIT_UNSUPPORTED` (shape this updater does not handle) or
 * `CONDITION_FAILED` (checks that no image can satisfy).
 */
export function fetchTargets(plan: UpdatePlan): FetchTarget[] {
  const fetches = plan.images.filter((i) => i.action === 'fetch');
  if (fetches.length === 0) throw unsupported('the manifest fetches no image');
  const seen = new Set<number>();
  return fetches.map((img) => {
    if (seen.has(img.componentIndex)) throw unsupported(`component ${img.componentIndex} is fetched more than once`);
    seen.add(img.componentIndex);
    return target(img, fetches.length > 1 ? ` of component ${img.componentIndex}` : '');
  });
}

function unsupported(m: string): CoapfwError {
  return new CoapfwError('SUIT_UNSUPPORTED', `manifest: ${m}`);
}

function target(img: PlannedImage, which: string): FetchTarget {
  if (img.uri === undefined) throw unsupported(`the fetched image${which} has no uri`);
  if (img.checks.length === 0) throw unsupported(`no condition-image-match checks the fetched image${which}`);
  let digest: Uint8Array | undefined;
  let size: number | undefined;
  for (const c of img.checks) {
    if (c.digest?.alg !== ALG.sha256 || c.digest.bytes.length !== SHA256_SIZE) {
      throw unsupported(`every image-match of the fetched image${which} must use a SHA-256 image digest`);
    }
    if (digest !== undefined && !equalBytes(digest, c.digest.bytes)) {
      throw new CoapfwError('CONDITION_FAILED', `manifest: the image-match checks of the fetched image${which} name different digests`);
    }
    if (c.size !== undefined && size !== undefined && c.size !== size) {
      throw new CoapfwError('CONDITION_FAILED', `manifest: the image-match checks of the fetched image${which} name different sizes (${size}, ${c.size})`);
    }
    digest = c.digest.bytes;
    size = c.size ?? size;
  }
  if (digest === undefined || size === undefined) throw unsupported(`no image-match of the fetched image${which} states the image size`);
  return { componentIndex: img.componentIndex, componentId: img.componentId, uri: img.uri, digest, size };
}
