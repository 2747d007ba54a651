/**
 * The flash layout: two image slots per updatable component, one scratch
 * block for swapping, and a small metadata area holding two independent
 * record logs.
 *
 * ```
 * base
 * +---------------------------+  primary    slotSize bytes  (component 0: the image that runs)
 * +---------------------------+  secondary  slotSize bytes  (component 0: download target / fallback)
 * +---------------------------+  primary, secondary of component 1 ... (each its own slotSize)
 * +---------------------------+  scratch    1 erase block   (swap buffer, shared)
 * +---------------------------+  bootLog    bootLogBlocks erase blocks (BootRecord log, device/boot.ts)
 * +---------------------------+  journal    journalBlocks erase blocks (ResumeRecord log, flash/journal.ts)
 * +---------------------------+  trust      optional: trustAreaSize bytes (TrustStore.areaSize, flash/trust-store.ts)
 * +---------------------------+  base + layoutSize()
 * ```
 *
 * Every area starts and ends on an erase-block boundary, so erasing one
 * never touches another. The boot log is written only by the bootloader and
 * by `requestTestBoot` / `confirm`; the resume journal only by the updater.
 * Keeping them apart means the updater's progress records never force a
 * compaction of the boot state, and the bootloader never needs to parse
 * download state.
 *
 * Several components (a board with an application core, a radio, a
 * bootloader, ...; RFC 9124 §4.2.6, one manifest for several subsystems):
 * each has its own primary and secondary slot, an update writes the new
 * image of every component it names into that component's secondary, and
 * the boot model (device/boot.ts) swaps the whole set in and out as one. A
 * one-component layout is exactly the single-image layout above.
 *
 * Single bank ({@link createSingleBankLayout}, a board that cannot hold two
 * images: 96 KiB of flash for a 60 KiB image): one slot, no secondary and no
 * scratch (both empty areas), and a recovery area where the update client
 * keeps the manifest and the digest top list of an update that overwrites
 * the running image in place (device/inplace.ts):
 * ```
 * base
 * +---------------------------+  primary    slotSize bytes  (the image, overwritten in place by an update)
 * +---------------------------+  staging    stagingBlocks erase blocks (envelope + digest top list, flash/staging.ts)
 * +---------------------------+  bootLog    bootLogBlocks erase blocks
 * +---------------------------+  journal    journalBlocks erase blocks (progress of the overwrite, per erase block)
 * +---------------------------+  base + singleBankLayoutSize()
 * ```
 *
 * The trust area (`trustAreaSize` option) holds the device's trust state (anchors,
 * roles, revocation list, owner key; issue 14) in a TrustStore. It comes
 * last, so a layout without it keeps every other area where it was, and
 * only the trust code (device/trust-device.ts) ever writes it.
 */
import { CoapfwError } from '../errors.js';
import { checkGeometry, type FlashGeometry } from './backend.js';

/** A contiguous, erase-block aligned region of the chip. */
export interface FlashArea {
  readonly offset: number;
  readonly size: number;
}

/** SUIT_Component_Identifier (draft-ietf-suit-manifest §8.4.5.1): an array of byte strings. */
export type ComponentIdBytes = readonly Uint8Array[];

/** The two slots of one updatable component. */
export interface ComponentSlots {
  /** The SUIT component id this component answers to; undefined: any (single-component layouts only). */
  readonly id: ComponentIdBytes | undefined;
  /** Where its running image lives. */
  readonly primary: FlashArea;
  /** Where a new image is written, and the previous one kept after a swap. */
  readonly secondary: FlashArea;
}

/** Most components a layout may have (the boot record keeps the update set as an 8-bit mask). */
export const MAX_COMPONENTS = 8;

/** Where everything lives on the chip. Build with {@link createLayout}. */
export interface FlashLayout {
  readonly eraseBlockSize: number;
  readonly writeAlignment: number;
  /** Every updatable component, in order; component 0 is the one that boots. */
  readonly components: readonly ComponentSlots[];
  /** Component 0's primary slot. */
  readonly primary: FlashArea;
  /** Component 0's secondary slot. */
  readonly secondary: FlashArea;
  readonly scratch: FlashArea;
  readonly bootLog: FlashArea;
  readonly journal: FlashArea;
  /** The trust store's area (flash/trust-store.ts), when the layout has one. */
  readonly trust?: FlashArea;
  /**
   * Single-bank layouts only ({@link createSingleBankLayout}): where an
   * in-place update keeps its manifest and digest top list. Its presence
   * means the secondary and scratch areas are empty and updates overwrite
   * the primary slot.
   */
  readonly recovery?: RecoveryArea;
}

/** The recovery area of a single-bank layout (with the layout's journal and boot log). */
export interface RecoveryArea {
  /** The staged envelope and digest top list of an in-place update. */
  readonly staging: FlashArea;
}

/** One component of {@link LayoutOptions.components}. */
export interface ComponentOptions {
  /** Size of each of its two slots in bytes: a multiple of the erase block size. */
  readonly slotSize: number;
  /** Its SUIT component id (required when there are several components). */
  readonly id?: ComponentIdBytes;
}

/** Options of {@link createLayout}: `slotSize` (one component) or `components`. */
export interface LayoutOptions {
  /** Size of each image slot in bytes (one component): a multiple of the erase block size. */
  slotSize?: number;
  /** Several components, each with its own slots (at most {@link MAX_COMPONENTS}, each with a distinct id). */
  components?: readonly ComponentOptions[];
  /** Erase blocks for the boot record log (>= 2, used as a ring). Default 2. */
  bootLogBlocks?: number;
  /** Erase blocks for the resume journal (>= 2, used as a ring). Default 2. */
  journalBlocks?: number;
  /** Offset of the first area on the chip (erase-block aligned). Default 0. */
  base?: number;
  /**
   * Bytes of a trust area after the journal: `TrustStore.areaSize(geometry)`
   * (flash/trust-store.ts; a multiple of the erase block size). Default: none.
   */
  trustAreaSize?: number;
}

function blocks(n: number | undefined, label: string): number {
  const v = n ?? 2;
  if (!Number.isSafeInteger(v) || v < 2) {
    throw new CoapfwError('INVALID_ARGUMENT', `layout: ${label} must be an integer >= 2, got ${v}`);
  }
  return v;
}

function componentList(ebs: number, options: LayoutOptions): ComponentOptions[] {
  const bad = (m: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `layout: ${m}`);
  if ((options.slotSize === undefined) === (options.components === undefined)) throw bad('give either slotSize or components');
  const list: ComponentOptions[] = options.components ? [...options.components] : [{ slotSize: options.slotSize! }];
  if (list.length < 1 || list.length > MAX_COMPONENTS) throw bad(`1..${MAX_COMPONENTS} components, got ${list.length}`);
  const ids = new Set<string>();
  list.forEach((c, i) => {
    if (!Number.isSafeInteger(c.slotSize) || c.slotSize <= 0 || c.slotSize % ebs !== 0) {
      throw bad(`${list.length > 1 ? `component ${i} ` : ''}slotSize must be a positive multiple of ${ebs}, got ${c.slotSize}`);
    }
    if (list.length > 1 && (c.id === undefined || c.id.length === 0)) throw bad(`component ${i} needs an id (several components)`);
    if (c.id !== undefined) {
      if (!c.id.every((p) => p instanceof Uint8Array)) throw bad(`component ${i}: id must be an array of byte strings`);
      const key = c.id.map((p) => p.join('.')).join('/');
      if (ids.has(key)) throw bad(`component ${i}: id ${key} is used twice`);
      ids.add(key);
    }
  });
  return list;
}

function trustBytes(ebs: number, options: LayoutOptions): number {
  const size = options.trustAreaSize ?? 0;
  if (!Number.isSafeInteger(size) || size < 0 || size % ebs !== 0 || (options.trustAreaSize !== undefined && size === 0)) {
    throw new CoapfwError('INVALID_ARGUMENT', `layout: trustAreaSize must be a positive multiple of ${ebs} (TrustStore.areaSize), got ${size}`);
  }
  return size;
}

/** Bytes of flash (from `base`) the layout needs. */
export function layoutSize(geometry: FlashGeometry, options: LayoutOptions): number {
  const ebs = geometry.eraseBlockSize;
  const slots = componentList(ebs, options).reduce((n, c) => n + 2 * c.slotSize, 0);
  return slots + ebs * (1 + blocks(options.bootLogBlocks, 'bootLogBlocks') + blocks(options.journalBlocks, 'journalBlocks')) + trustBytes(ebs, options);
}

/**
 * Compute the layout for a chip. Throws `INVALID_ARGUMENT` when a size is
 * not erase-block aligned and `FLASH_RANGE` when it does not fit.
 *
 * @example
 * const flash = new MemoryFlash({ size: 64 * 1024, eraseBlockSize: 4096 });
 * const layout = createLayout(flash, { slotSize: 24 * 1024 });
 * const board = createLayout(chip, { components: [{ id: [Uint8Array.of(0)], slotSize: 64 * 1024 }, { id: [Uint8Array.of(1)], slotSize: 16 * 1024 }] });
 */
export function createLayout(geometry: FlashGeometry, options: LayoutOptions): FlashLayout {
  checkGeometry(geometry, 'layout');
  const ebs = geometry.eraseBlockSize;
  const base = options.base ?? 0;
  const list = componentList(ebs, options);
  if (!Number.isSafeInteger(base) || base < 0 || base % ebs !== 0) {
    throw new CoapfwError('INVALID_ARGUMENT', `layout: base must be a multiple of ${ebs}, got ${base}`);
  }
  const bootLogBlocks = blocks(options.bootLogBlocks, 'bootLogBlocks');
  const journalBlocks = blocks(options.journalBlocks, 'journalBlocks');
  const total = layoutSize(geometry, options);
  if (base + total > geometry.size) {
    throw new CoapfwError('FLASH_RANGE', `layout: needs ${total} bytes from ${base}, chip has ${geometry.size}`);
  }
  let at = base;
  const take = (size: number): FlashArea => {
    const area = { offset: at, size };
    at += size;
    return area;
  };
  const components = list.map((c): ComponentSlots => ({ id: c.id?.map((p) => p.slice()), primary: take(c.slotSize), secondary: take(c.slotSize) }));
  return {
    eraseBlockSize: ebs,
    writeAlignment: geometry.writeAlignment,
    components,
    primary: components[0]!.primary,
    secondary: components[0]!.secondary,
    scratch: take(ebs),
    bootLog: take(bootLogBlocks * ebs),
    journal: take(journalBlocks * ebs),
    ...(options.trustAreaSize === undefined ? {} : { trust: take(trustBytes(ebs, options)) }),
  };
}

/** Options of {@link createSingleBankLayout}. */
export interface SingleBankLayoutOptions {
  /** Size of the one image slot in bytes: a multiple of the erase block size. */
  slotSize: number;
  /**
   * Bytes kept for the staged envelope and digest top list (rounded up to
   * erase blocks, at least one). Default 4096: an envelope of about 3.9 KiB
   * with the top list of a 60 KiB image at 1 KiB blocks.
   */
  stagingSize?: number;
  /** Erase blocks of the boot record log (>= 2). Default 2. */
  bootLogBlocks?: number;
  /** Erase blocks of the journal (>= 2). Default 2. */
  journalBlocks?: number;
  /** Offset of the first area (erase-block aligned). Default 0. */
  base?: number;
}

/** Bytes of flash (from `base`) a single-bank layout needs. */
export function singleBankLayoutSize(geometry: FlashGeometry, options: SingleBankLayoutOptions): number {
  const ebs = geometry.eraseBlockSize;
  componentList(ebs, { slotSize: options.slotSize });
  return options.slotSize + ebs * (stagingBlocks(ebs, options.stagingSize) + blocks(options.bootLogBlocks, 'bootLogBlocks') + blocks(options.journalBlocks, 'journalBlocks'));
}

function stagingBlocks(ebs: number, size: number | undefined): number {
  const v = size ?? 4096;
  if (!Number.isSafeInteger(v) || v < 1) throw new CoapfwError('INVALID_ARGUMENT', `layout: stagingSize must be a positive integer, got ${v}`);
  return Math.ceil(v / ebs);
}

/**
 * The layout of a single-bank device (see the file comment). Throws
 * `INVALID_ARGUMENT` for sizes that are not erase-block aligned and
 * `FLASH_RANGE` when it does not fit.
 *
 * @example
 * const chip = new MemoryFlash({ size: 96 * 1024, eraseBlockSize: 1024 });
 * const layout = createSingleBankLayout(chip, { slotSize: 60 * 1024 }); // 60 + 4 + 2 + 2 KiB
 */
export function createSingleBankLayout(geometry: FlashGeometry, options: SingleBankLayoutOptions): FlashLayout {
  checkGeometry(geometry, 'layout');
  const ebs = geometry.eraseBlockSize;
  const base = options.base ?? 0;
  if (!Number.isSafeInteger(base) || base < 0 || base % ebs !== 0) {
    throw new CoapfwError('INVALID_ARGUMENT', `layout: base must be a multiple of ${ebs}, got ${base}`);
  }
  const total = singleBankLayoutSize(geometry, options);
  if (base + total > geometry.size) throw new CoapfwError('FLASH_RANGE', `layout: needs ${total} bytes from ${base}, chip has ${geometry.size}`);
  const primary = { offset: base, size: options.slotSize };
  const empty = { offset: base + options.slotSize, size: 0 };
  const staging = { offset: empty.offset, size: stagingBlocks(ebs, options.stagingSize) * ebs };
  const bootLog = { offset: staging.offset + staging.size, size: blocks(options.bootLogBlocks, 'bootLogBlocks') * ebs };
  const journal = { offset: bootLog.offset + bootLog.size, size: blocks(options.journalBlocks, 'journalBlocks') * ebs };
  return {
    eraseBlockSize: ebs,
    writeAlignment: geometry.writeAlignment,
    components: [{ id: undefined, primary, secondary: empty }],
    primary,
    secondary: empty,
    scratch: empty,
    bootLog,
    journal,
    recovery: { staging },
  };
}

/** The slot an update writes for `component`: the secondary (A/B), or the primary itself (single bank). */
export function updateSlot(layout: FlashLayout, component: number): FlashArea {
  const c = layout.components[component]!;
  return layout.recovery ? c.primary : c.secondary;
}

/** Throw `INVALID_ARGUMENT` unless `layout` was made for a chip with `flash`'s geometry. */
export function checkLayout(flash: FlashGeometry, layout: FlashLayout): void {
  if (layout.eraseBlockSize !== flash.eraseBlockSize || layout.writeAlignment !== flash.writeAlignment) {
    throw new CoapfwError('INVALID_ARGUMENT', 'layout: made for a chip with another erase block size or write alignment');
  }
  const last = layout.trust ?? layout.journal;
  const end = Math.max(layout.journal.offset + layout.journal.size, last.offset + last.size);
  if (end > flash.size) throw new CoapfwError('FLASH_RANGE', `layout: ends at ${end}, chip has ${flash.size} bytes`);
}
