/**
 * Add coapfw-block-digests (block-digests-param.ts) to a manifest built
 * elsewhere (the JSON input of `coapfw manifest create`, compile.ts): beside
 * every suit-parameter-image-digest that names an image we have digests for,
 * in every command sequence and try-each branch, so each place that says
 * "this component's image is X" also says "and these are X's blocks".
 */
import { CoapfwError } from '../errors.js';
import { blockDigestsParameter } from './block-digests-param.js';
import type { ManifestInput } from './encode.js';
import type { BlockDigestsInfo, SuitCommand, SuitDigest } from './types.js';
import { bytesEqual } from './values.js';

/** An image's digest and the block digests to put beside it. */
export interface ImageBlockDigests {
  readonly digest: SuitDigest;
  readonly info: BlockDigestsInfo;
}

function withDigests(cmds: readonly SuitCommand[], images: readonly ImageBlockDigests[], added: Set<ImageBlockDigests>): SuitCommand[] {
  return cmds.map((c): SuitCommand => {
    if (c.kind === 'try-each') return { ...c, branches: c.branches.map((b) => withDigests(b, images, added)) };
    if (c.kind === 'run-sequence') return { ...c, sequence: withDigests(c.sequence, images, added) };
    if (c.kind !== 'override-parameters' || c.params.imageDigest === undefined) return c;
    const d = c.params.imageDigest;
    const img = images.find((i) => i.digest.alg === d.alg && bytesEqual(i.digest.bytes, d.bytes) && (c.params.imageSize === undefined || c.params.imageSize === i.info.imageSize));
    if (img === undefined) return c;
    added.add(img);
    return { ...c, params: { ...c.params, other: new Map([...(c.params.other ?? []), blockDigestsParameter(img.info)]) } };
  });
}

/**
 * `manifest` with the block digests of `images` beside their image digests.
 * INVALID_ARGUMENT when an image's digest appears nowhere (its digests would
 * authenticate nothing).
 */
export function withBlockDigests(manifest: ManifestInput, images: readonly ImageBlockDigests[]): ManifestInput {
  const added = new Set<ImageBlockDigests>();
  const map = (s: readonly SuitCommand[] | undefined): SuitCommand[] | undefined => (s === undefined ? undefined : withDigests(s, images, added));
  const out: ManifestInput = {
    ...manifest,
    sharedSequence: map(manifest.sharedSequence)!,
    ...(manifest.payloadFetch ? { payloadFetch: map(manifest.payloadFetch) } : {}),
    ...(manifest.install ? { install: map(manifest.install) } : {}),
    ...(manifest.validate ? { validate: map(manifest.validate) } : {}),
    ...(manifest.load ? { load: map(manifest.load) } : {}),
    ...(manifest.invoke ? { invoke: map(manifest.invoke) } : {}),
  };
  const missing = images.find((i) => !added.has(i));
  if (missing) throw new CoapfwError('INVALID_ARGUMENT', 'block digests: no image-digest parameter of the manifest names this image');
  return out;
}
