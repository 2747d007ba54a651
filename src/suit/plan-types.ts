/**
 * The shapes of planning (draft-ietf-suit-manifest-37 §6, §8.4.9): what the
 * device tells the planner about itself, and the plan it gets back.
 */
import type { DeltaParam } from './delta-manifest.js';
import type { BlockDigestsInfo, ComponentId, SuitDigest } from './types.js';

/** The image a device holds for a component: what an image-match before a fetch compares with. */
export interface InstalledImage {
  readonly digest: SuitDigest;
  readonly size: number;
}

/**
 * What the device knows about itself, for conditions (§8.4.9.1, §8.4.9.3).
 * A missing value means "not evaluated" (listed in `UpdatePlan.unchecked`),
 * not "matches": a device should pass its vendor and class ids.
 */
export interface DeviceIdentity {
  readonly vendorId?: Uint8Array;
  readonly classId?: Uint8Array;
  readonly deviceId?: Uint8Array;
  /**
   * Slot condition-component-slot compares with: the slot the device will
   * write for A/B updates (WG example 3). A number applies to every component.
   * When undefined, component-slot conditions are not evaluated: they pass,
   * 'component-slot' is listed in `unchecked`, and so the first try-each
   * alternative is taken.
   */
  readonly componentSlot?: number | ((componentId: ComponentId, index: number) => number | undefined);
  /**
   * The image installed in a component (its digest and size), for an
   * image-match in payload-fetch or install before the component was fetched
   * or copied (the source check of a delta). `null`: the component holds no
   * image (the condition fails); `undefined`, or no function: unknown (the
   * condition is not evaluated: 'image-match' is listed in `unchecked`).
   */
  readonly installed?: (componentId: ComponentId, index: number) => InstalledImage | null | undefined;
  /**
   * Whether the device applies coapfw deltas (a copy with coapfw-delta,
   * src/suit/delta-manifest.ts). When false such a copy is a failed
   * condition, so try-each takes the full image. Default true: the plan
   * carries the delta parameter for the updater.
   */
  readonly applyDeltas?: boolean;
}

/** Which sequence a plan step comes from. */
export type PlanSequence = 'payload-fetch' | 'install' | 'validate' | 'load' | 'invoke';

/** A condition to check on an image's bytes after fetch or copy (image-match, §8.4.9.2). */
export interface ImageCheck {
  readonly kind: 'image-match';
  readonly digest?: SuitDigest;
  readonly size?: number;
}

/** One fetch or copy of an image into a component. */
export interface PlannedImage {
  readonly sequence: PlanSequence;
  readonly action: 'fetch' | 'copy';
  readonly componentIndex: number;
  readonly componentId: ComponentId;
  /** Slot chosen for the component (suit-parameter-component-slot), if the manifest sets one. */
  readonly slot: number | undefined;
  /** Where to fetch from (suit-parameter-uri); undefined for copy. */
  readonly uri: string | undefined;
  /** Expected digest and size (suit-parameter-image-digest / image-size) when the step runs. */
  readonly digest: SuitDigest | undefined;
  readonly size: number | undefined;
  /** For copy: the source component's index. */
  readonly sourceComponent?: number;
  /** Conditions to check on the image after this step: the manifest's image-match. */
  readonly checks: ImageCheck[];
  /** Per-block digests of the image (coapfw-block-digests) in effect at this step, if any. */
  readonly blockDigests?: BlockDigestsInfo;
  /** For copy: the source component holds a coapfw delta to apply, not bytes to copy (coapfw-delta). */
  readonly delta?: DeltaParam;
}

/** The plan an updater executes, in order: images (payload-fetch, install, load), then invoke. */
export interface UpdatePlan {
  readonly sequenceNumber: bigint;
  readonly images: readonly PlannedImage[];
  /** image-match checks of the validate sequence (secure boot), per component. */
  readonly validate: readonly { readonly componentIndex: number; readonly componentId: ComponentId; readonly check: ImageCheck }[];
  /** Components to invoke (boot), in order. */
  readonly invoke: readonly { readonly componentIndex: number; readonly componentId: ComponentId; readonly args?: Uint8Array }[];
  /** Conditions evaluated against the device identity, by name (for example 'vendor-identifier'). */
  readonly conditionsChecked: readonly string[];
  /** Conditions not evaluated because the identity lacked the value. */
  readonly unchecked: readonly string[];
}
