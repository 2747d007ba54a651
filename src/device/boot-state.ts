/**
 * The bootloader's durable state: one snapshot record in a RecordLog
 * (flash/record-log.ts) in the layout's `bootLog` area. Every state change
 * of the boot model (request a test boot, each swap step, mark booted,
 * confirm, finish a swap) is exactly one appended record, so each change
 * is atomic: a power cut leaves either the old or the new state.
 *
 * Record payload (big-endian), for a layout of N components: 12 + 72·N
 * bytes, plus 4 when N > 1 (84 bytes for one component, 96 on flash with the
 * log's framing and CRC, padded to the write alignment; 160 and 172 for two):
 * ```
 * offset size field
 *      0    1 mode of the running set (0 confirmed, 1 test-pending, 2 testing)
 *      1    1 pending: 1 when a test boot of the set's secondaries was requested
 *      2    1 swap kind (0 none, 1 install, 2 revert)
 *      3    1 swap step within the block (0, 1, 2; see boot-swap.ts)
 *      4    4 swap: number of erase blocks of the component being swapped
 *      8    4 swap: index of the block in progress
 *   12+72i  4 component i: primary image size (0xFFFFFFFF: no image)
 *   16+72i 32 component i: primary image SHA-256
 *   48+72i  4 component i: secondary image size (0xFFFFFFFF: no image)
 *   52+72i 32 component i: secondary image SHA-256
 * N > 1 only, after the components:
 *     +0    1 swap: position in the set of the component being swapped
 *     +1    1 the set: bit i = component i (requested, swapped in, or to swap back)
 *     +2    2 reserved, 0
 * ```
 * With one component the set is always component 0. During a swap the
 * image descriptors still describe the slots as they were before it started;
 * the record that ends the swap exchanges them for every component of the
 * set at once.
 */
import { CoapfwError } from '../errors.js';
import type { FlashBackend } from '../flash/backend.js';
import { checkLayout, MAX_COMPONENTS, type FlashLayout } from '../flash/layout.js';
import { RecordLog } from '../flash/record-log.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { sha256 } from '@noble/hashes/sha2.js';

/** An image a slot holds: its length and SHA-256. */
export interface SlotImage {
  readonly size: number;
  readonly digest: Uint8Array;
}

/** What the two slots of one component hold. */
export interface ComponentImages {
  readonly primary: SlotImage | null;
  readonly secondary: SlotImage | null;
}

/**
 * State of the running set (MCUboot's image-ok and copy-done):
 * `confirmed`: image-ok set, it stays; `test-pending`: swapped in, not yet
 * booted; `testing`: booted once as a test set and not confirmed: the next
 * boot reverts it.
 */
export type PrimaryMode = 'confirmed' | 'test-pending' | 'testing';

/** A swap in progress. */
export interface SwapProgress {
  /** `install`: the set's secondaries become the test images; `revert`: back to the previous ones. */
  readonly kind: 'install' | 'revert';
  /** Position in `BootState.set` of the component being swapped. */
  readonly part: number;
  /** Erase blocks of that component to exchange, from the start of its slots. */
  readonly blocks: number;
  /** Block being exchanged. */
  readonly index: number;
  /** Step within that block (0 primary→scratch, 1 secondary→primary, 2 scratch→secondary). */
  readonly step: 0 | 1 | 2;
}

/** The bootloader's durable state. */
export interface BootState {
  /** Per layout component, what its slots hold. */
  readonly components: readonly ComponentImages[];
  readonly primaryMode: PrimaryMode;
  /** A test boot of the set's secondary images was requested and not yet started. */
  readonly pending: boolean;
  /** Components (ascending) of the update set: requested, swapped in as one, and reverted as one. */
  readonly set: readonly number[];
  readonly swap: SwapProgress | null;
}

/** Boot log kind (see record-log.ts). */
export const BOOT_LOG_KIND = 2;
/** Payload bytes of a boot record for one component. */
export const BOOT_PAYLOAD_SIZE = 84;

/** Payload bytes of a boot record for `components` components. */
export function bootPayloadSize(components: number): number {
  return 12 + 72 * components + (components > 1 ? 4 : 0);
}

const MODES: readonly PrimaryMode[] = ['confirmed', 'test-pending', 'testing'];
const NO_IMAGE = 0xffffffff;

function putImage(out: Uint8Array, at: number, image: SlotImage | null): void {
  new DataView(out.buffer).setUint32(at, image ? image.size : NO_IMAGE);
  if (image) out.set(image.digest, at + 4);
}

function getImage(p: Uint8Array, at: number): SlotImage | null {
  const size = new DataView(p.buffer, p.byteOffset).getUint32(at);
  return size === NO_IMAGE ? null : { size, digest: p.slice(at + 4, at + 36) };
}

/** Encode a state (trusted input: built by boot.ts). */
export function encodeBootState(s: BootState): Uint8Array {
  const n = s.components.length;
  const out = new Uint8Array(bootPayloadSize(n));
  const view = new DataView(out.buffer);
  out[0] = MODES.indexOf(s.primaryMode);
  out[1] = s.pending ? 1 : 0;
  out[2] = s.swap === null ? 0 : s.swap.kind === 'install' ? 1 : 2;
  out[3] = s.swap?.step ?? 0;
  view.setUint32(4, s.swap?.blocks ?? 0);
  view.setUint32(8, s.swap?.index ?? 0);
  s.components.forEach((c, i) => {
    putImage(out, 12 + 72 * i, c.primary);
    putImage(out, 48 + 72 * i, c.secondary);
  });
  if (n > 1) {
    const at = 12 + 72 * n;
    out[at] = s.swap?.part ?? 0;
    out[at + 1] = s.set.reduce((m, c) => m | (1 << c), 0);
  }
  return out;
}

/** Decode a payload of a layout with `components` components; `JOURNAL_CORRUPT` if a CRC-valid record holds impossible values. */
export function decodeBootState(p: Uint8Array, components = 1): BootState {
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  if (p.length !== bootPayloadSize(components) || p[0]! > 2 || p[1]! > 1 || p[2]! > 2 || p[3]! > 2) {
    throw new CoapfwError('JOURNAL_CORRUPT', 'boot log: newest record holds invalid values');
  }
  const blocks = view.getUint32(4);
  const index = view.getUint32(8);
  if (p[2] !== 0 && index >= blocks) throw new CoapfwError('JOURNAL_CORRUPT', 'boot log: swap index out of range');
  const comps = Array.from({ length: components }, (_, i) => ({ primary: getImage(p, 12 + 72 * i), secondary: getImage(p, 48 + 72 * i) }));
  let set = [0];
  let part = 0;
  if (components > 1) {
    const at = 12 + 72 * components;
    const mask = p[at + 1]!;
    set = comps.map((_, i) => i).filter((i) => mask & (1 << i));
    part = p[at]!;
    if (mask >> components !== 0 || set.length === 0 || (p[2] !== 0 && part >= set.length)) {
      throw new CoapfwError('JOURNAL_CORRUPT', 'boot log: update set out of range');
    }
  }
  return {
    primaryMode: MODES[p[0]!]!,
    pending: p[1] === 1,
    set,
    swap: p[2] === 0 ? null : { kind: p[2] === 1 ? 'install' : 'revert', part, blocks, index, step: p[3] as 0 | 1 | 2 },
    components: comps,
  };
}

/**
 * The identity of a set of images, as the resume journal records it: the
 * image's own SHA-256 for one image, else SHA-256 over the images' digests
 * in component order.
 */
export function setDigest(digests: readonly Uint8Array[]): Uint8Array {
  return digests.length === 1 ? digests[0]!.slice() : sha256(concatBytes(...digests));
}

/** {@link setDigest} of the set's running images; undefined when one of them is missing. */
export function runningSetDigest(state: BootState): Uint8Array | undefined {
  const images = state.set.map((c) => state.components[c]?.primary ?? null);
  return images.some((i) => i === null) ? undefined : setDigest(images.map((i) => i!.digest));
}

/** The boot state log: open, read the current state, append a new one. */
export class BootLog {
  private constructor(
    private readonly log: RecordLog,
    private readonly components: number,
  ) {}

  /** Open the log in `layout.bootLog`. */
  static async open(flash: FlashBackend, layout: FlashLayout): Promise<BootLog> {
    checkLayout(flash, layout);
    const n = layout.components.length;
    if (n < 1 || n > MAX_COMPONENTS) throw new CoapfwError('INVALID_ARGUMENT', `boot log: 1..${MAX_COMPONENTS} components, got ${n}`);
    return new BootLog(await RecordLog.open(flash, layout.bootLog, { kind: BOOT_LOG_KIND, payloadSize: bootPayloadSize(n) }), n);
  }

  /** The current state, or undefined when no image was ever installed. */
  state(): BootState | undefined {
    const rec = this.log.latest();
    return rec && decodeBootState(rec.payload, this.components);
  }

  /** Commit a new state (one program operation, plus a page erase now and then). */
  async commit(state: BootState): Promise<BootState> {
    await this.log.append(encodeBootState(state));
    return state;
  }

  /** Bytes of one boot record on flash. */
  get recordSize(): number {
    return this.log.recordSize;
  }
}
