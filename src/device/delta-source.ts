/**
 * An image the update client rebuilds from a coapfw delta (src/delta/, CFD1)
 * against the image installed in the same component, instead of fetching it
 * whole: what the manifest's differential try-each alternative
 * (src/suit/delta-manifest.ts) becomes on the device.
 */
import type { CoapOption } from '../codec/message.js';
import type { BlockDigestsInfo } from '../suit/types.js';
import type { CandidateImage } from './candidate.js';

/** Where a delta-built image comes from (a variant of `ImageSource`). */
export interface DeltaSource {
  readonly kind: 'delta';
  /** Uri-Path / Uri-Query of the delta on the manifest's server. */
  readonly options: readonly CoapOption[];
  /** SHA-256 and size of the delta (the image-match after its fetch). */
  readonly digest: Uint8Array;
  readonly size: number;
  /** Per-block digests of the delta bytes: each delta block is checked before it is applied. */
  readonly auth?: BlockDigestsInfo;
  /** Target bytes per frame (coapfw-delta): a multiple of the erase block, one journal record per frame. */
  readonly frameSize: number;
  /**
   * The full image of the manifest's other try-each alternative, taken when
   * the delta cannot be used (its source does not match, it is malformed,
   * or a block fails its digest).
   */
  readonly fallback?: CandidateImage;
}
