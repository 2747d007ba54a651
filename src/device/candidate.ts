/**
 * From a verified manifest to what the update client installs: every image
 * the manifest fetches, each placed in the layout component its component id
 * names, with where its bytes come from (the manifest's server, or the
 * envelope itself for an integrated payload), in component order.
 *
 * The images of one update form one download stream for the resume journal
 * (flash/journal.ts keeps one position): image k starts at stream offset
 * `start(k)`, the sum of the sizes before it each rounded up to
 * {@link STREAM_ALIGN}, so a journal position `nextBlock * blockSize` names
 * one image and an erase-block-aligned offset in it for any block size. With
 * one image the stream is the image, as before.
 */
import type { CoapOption } from '../codec/message.js';
import { CoapfwError } from '../errors.js';
import { alignUp } from '../flash/backend.js';
import { updateSlot, type FlashLayout } from '../flash/layout.js';
import type { BlockDigestsInfo, ComponentId, DecodedEnvelope } from '../suit/types.js';
import { equalBytes } from '@noble/curves/utils.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { setDigest } from './boot-state.js';
import type { DeltaSource } from './delta-source.js';
import type { FetchTarget } from './fetch-target.js';
import { imageRequestOptions } from './image-uri.js';

/** Where an image's bytes come from. */
export type ImageSource =
  /** Block-wise from the manifest's server, with these Uri-Path / Uri-Query options. */
  | { readonly kind: 'fetch'; readonly options: readonly CoapOption[] }
  /** An integrated payload of the envelope (draft-ietf-suit-manifest §7.5: a `#name` URI). */
  | { readonly kind: 'integrated'; readonly name: string; readonly bytes: Uint8Array }
  /** Rebuilt from a coapfw delta against the installed image (device/delta-apply.ts). */
  | DeltaSource;

/** One image of an update. */
export interface CandidateImage {
  /** Layout component whose secondary slot receives it. */
  readonly component: number;
  /** SHA-256 and size from the manifest's image-match checks. */
  readonly digest: Uint8Array;
  readonly size: number;
  readonly source: ImageSource;
  /** Where it starts in the download stream (see the file comment). */
  readonly start: number;
  /** Its per-block digests (coapfw-block-digests): every block is checked before it is written. */
  readonly auth?: BlockDigestsInfo;
}

/** Images of the stream are aligned to this or the erase block, whichever is larger (a multiple of every Block2 size). */
export const STREAM_ALIGN = 1024;

const idHex = (id: ComponentId): string => `[${id.map((p) => `h'${bytesToHex(p)}'`).join(', ')}]`;

/** The layout component a manifest component id names; `SUIT_UNSUPPORTED` when the device has none. */
export function layoutComponent(layout: FlashLayout, id: ComponentId): number {
  const comps = layout.components;
  // A single-component layout without an id takes any one component (the single-image device).
  if (comps.length === 1 && comps[0]!.id === undefined) return 0;
  const i = comps.findIndex((c) => c.id !== undefined && c.id.length === id.length && c.id.every((p, k) => equalBytes(p, id[k]!)));
  if (i < 0) throw new CoapfwError('SUIT_UNSUPPORTED', `manifest: component ${idHex(id)} is not one of this device's components`);
  return i;
}

function source(manifestUri: string, envelope: DecodedEnvelope, uri: string): ImageSource {
  if (uri.startsWith('#')) {
    // §7.5: a fragment-only URI names a payload carried in the envelope, under that text key
    // (some producers key it without the '#').
    const bytes = envelope.integratedPayloads.get(uri) ?? envelope.integratedPayloads.get(uri.slice(1));
    if (bytes === undefined) throw new CoapfwError('SUIT_MALFORMED', `manifest: integrated payload ${JSON.stringify(uri)} is not in the envelope`);
    return { kind: 'integrated', name: uri, bytes };
  }
  try {
    return { kind: 'fetch', options: imageRequestOptions(manifestUri, uri) };
  } catch (e) {
    // A URI this device cannot fetch: the manifest is unusable here, not a transient failure.
    throw new CoapfwError('SUIT_UNSUPPORTED', `manifest: cannot fetch image uri ${JSON.stringify(uri)} (${(e as Error).message})`, { cause: e });
  }
}

/**
 * The images of an update, in component order, each checked to fit its
 * slot (`IMAGE_TOO_LARGE`) and an integrated payload to be no larger than its
 * image (`TOO_LARGE`; its digest is checked after it is written).
 */
export function candidateImages(targets: readonly FetchTarget[], layout: FlashLayout, manifestUri: string, envelope: DecodedEnvelope): CandidateImage[] {
  const placed = targets.map((t) => ({ t, component: layoutComponent(layout, t.componentId) }));
  placed.sort((a, b) => a.component - b.component);
  for (let k = 1; k < placed.length; k++) {
    if (placed[k]!.component === placed[k - 1]!.component) throw new CoapfwError('SUIT_UNSUPPORTED', 'manifest: two images for one component of this device');
  }
  const align = Math.max(STREAM_ALIGN, layout.eraseBlockSize);
  let start = 0;
  return placed.map(({ t, component }) => {
    const slot = updateSlot(layout, component);
    if (t.size > slot.size) throw new CoapfwError('IMAGE_TOO_LARGE', `manifest: image of ${t.size} bytes exceeds the ${slot.size}-byte slot${layout.components.length > 1 ? ` of component ${component}` : ''}`);
    const src = source(manifestUri, envelope, t.uri);
    if (src.kind === 'integrated' && src.bytes.length > t.size) {
      throw new CoapfwError('TOO_LARGE', `manifest: integrated payload ${src.name} has ${src.bytes.length} bytes, the image-match checks say ${t.size}`);
    }
    const img: CandidateImage = { component, digest: t.digest, size: t.size, source: src, start };
    start += alignUp(t.size, align);
    return img;
  });
}

/** The identity and total size of a set of images, as the journal records them. */
export function setIdentity(images: readonly CandidateImage[]): { digest: Uint8Array; size: number } {
  return { digest: setDigest(images.map((i) => i.digest)), size: images.reduce((n, i) => n + i.size, 0) };
}

/** The image holding stream offset `offset` (the last one starting at or before it), and the offset within it. */
export function locate(images: readonly CandidateImage[], offset: number): { image: number; local: number } {
  let k = 0;
  while (k + 1 < images.length && images[k + 1]!.start <= offset) k++;
  return { image: k, local: offset - images[k]!.start };
}
