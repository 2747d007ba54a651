/**
 * Which image the update client fetches and what it must match, from a SUIT
 * plan (suit/plan.ts). The digest and size the device checks come from the
 * manifest's image-match conditions that follow the fetch
 * (draft-ietf-suit-manifest-37 §8.4.9.2), not from the parameters in effect
 * at the fetch directive (§8.4.10.4): a fetch verifies nothing by itself, and
 * a manifest may set (or change) the digest after the fetch and only then
 * check image-match.
 */
import { CoapfwError } from '../errors.js';
import { ALG } from '../suit/constants.js';
import type { UpdatePlan } from '../suit/index.js';
import { equalBytes } from '@noble/curves/utils.js';

/** The one image the device fetches into its secondary slot, and what it must match. */
export interface FetchTarget {
  /** suit-parameter-uri at the fetch. */
  readonly uri: string;
  /** SHA-256 every image-match check after the fetch states. */
  readonly digest: Uint8Array;
  /** Image size the image-match checks state: the image's exact size and the cut-off for endless data. */
  readonly size: number;
}

const SHA256_SIZE = 32;

/**
 * The fetch of `plan` and its image-match checks, reduced to one digest and
 * size. Requires exactly one fetch, with a URI, and at least one image-match
 * check after it; every check must carry a SHA-256 digest, at least one must
 * state the size, and all must agree (an image can only match all of them if
 * they name the same digest and size, so checking the slot against the common
 * digest and size checks it against every one).
 * Throws `SUIT_UNSUPPORTED` (shape this updater does not handle) or
 * `CONDITION_FAILED` (checks that no image can satisfy).
 */
export function fetchTarget(plan: UpdatePlan): FetchTarget {
  const unsupported = (m: string): CoapfwError => new CoapfwError('SUIT_UNSUPPORTED', `manifest: ${m}`);
  const fetches = plan.images.filter((i) => i.action === 'fetch');
  const img = fetches[0];
  if (fetches.length !== 1 || img === undefined) throw unsupported(`expected exactly one image to fetch, found ${fetches.length}`);
  if (img.uri === undefined) throw unsupported('the fetched image has no uri');
  if (img.checks.length === 0) throw unsupported('no condition-image-match checks the fetched image');
  let digest: Uint8Array | undefined;
  let size: number | undefined;
  for (const c of img.checks) {
    if (c.digest?.alg !== ALG.sha256 || c.digest.bytes.length !== SHA256_SIZE) {
      throw unsupported('every image-match of the fetched image must use a SHA-256 image digest');
    }
    if (digest !== undefined && !equalBytes(digest, c.digest.bytes)) {
      throw new CoapfwError('CONDITION_FAILED', 'manifest: the image-match checks of the fetched image name different digests');
    }
    if (c.size !== undefined && size !== undefined && c.size !== size) {
      throw new CoapfwError('CONDITION_FAILED', `manifest: the image-match checks of the fetched image name different sizes (${size}, ${c.size})`);
    }
    digest = c.digest.bytes;
    size = c.size ?? size;
  }
  if (digest === undefined || size === undefined) throw unsupported('no image-match of the fetched image states the image size');
  return { uri: img.uri, digest, size };
}
