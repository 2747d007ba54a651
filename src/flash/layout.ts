/**
 * The flash layout: two image slots, a scratch block for swapping, and a
 * small metadata area holding two independent record logs.
 *
 * ```
 * base
 * +---------------------------+  primary    slotSize bytes  (the image that runs)
 * +---------------------------+  secondary  slotSize bytes  (download target / fallback)
 * +---------------------------+  scratch    1 erase block   (swap buffer)
 * +---------------------------+  bootLog    bootLogBlocks erase blocks (BootRecord log, device/boot.ts)
 * +---------------------------+  journal    journalBlocks erase blocks (ResumeRecord log, flash/journal.ts)
 * +---------------------------+  base + layoutSize()
 * ```
 *
 * Every area starts and ends on an erase-block boundary, so erasing one
 * never touches another. The boot log is written only by the bootloader and
 * by `requestTestBoot` / `confirm`; the resume journal only by the updater.
 * Keeping them apart means the updater's progress records never force a
 * compaction of the boot state, and the bootloader never needs to parse
 * download state.
 */
import { CoapfwError } from '../errors.js';
import { checkGeometry, type FlashGeometry } from './backend.js';

/** A contiguous, erase-block aligned region of the chip. */
export interface FlashArea {
  readonly offset: number;
  readonly size: number;
}

/** Where everything lives on the chip. Build with {@link createLayout}. */
export interface FlashLayout {
  readonly eraseBlockSize: number;
  readonly writeAlignment: number;
  readonly primary: FlashArea;
  readonly secondary: FlashArea;
  readonly scratch: FlashArea;
  readonly bootLog: FlashArea;
  readonly journal: FlashArea;
}

/** Options of {@link createLayout}. */
export interface LayoutOptions {
  /** Size of each image slot in bytes: a multiple of the erase block size. */
  slotSize: number;
  /** Erase blocks for the boot record log (>= 2, used as a ring). Default 2. */
  bootLogBlocks?: number;
  /** Erase blocks for the resume journal (>= 2, used as a ring). Default 2. */
  journalBlocks?: number;
  /** Offset of the first area on the chip (erase-block aligned). Default 0. */
  base?: number;
}

function blocks(n: number | undefined, label: string): number {
  const v = n ?? 2;
  if (!Number.isSafeInteger(v) || v < 2) {
    throw new CoapfwError('INVALID_ARGUMENT', `layout: ${label} must be an integer >= 2, got ${v}`);
  }
  return v;
}

/** Bytes of flash (from `base`) the layout needs. */
export function layoutSize(geometry: FlashGeometry, options: LayoutOptions): number {
  const ebs = geometry.eraseBlockSize;
  return 2 * options.slotSize + ebs * (1 + blocks(options.bootLogBlocks, 'bootLogBlocks') + blocks(options.journalBlocks, 'journalBlocks'));
}

/**
 * Compute the layout for a chip. Throws `INVALID_ARGUMENT` when a size is
 * not erase-block aligned and `FLASH_RANGE` when it does not fit.
 *
 * @example
 * const flash = new MemoryFlash({ size: 64 * 1024, eraseBlockSize: 4096 });
 * const layout = createLayout(flash, { slotSize: 24 * 1024 });
 */
export function createLayout(geometry: FlashGeometry, options: LayoutOptions): FlashLayout {
  checkGeometry(geometry, 'layout');
  const ebs = geometry.eraseBlockSize;
  const { slotSize } = options;
  const base = options.base ?? 0;
  if (!Number.isSafeInteger(slotSize) || slotSize <= 0 || slotSize % ebs !== 0) {
    throw new CoapfwError('INVALID_ARGUMENT', `layout: slotSize must be a positive multiple of ${ebs}, got ${slotSize}`);
  }
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
  return {
    eraseBlockSize: ebs,
    writeAlignment: geometry.writeAlignment,
    primary: take(slotSize),
    secondary: take(slotSize),
    scratch: take(ebs),
    bootLog: take(bootLogBlocks * ebs),
    journal: take(journalBlocks * ebs),
  };
}

/** Throw `INVALID_ARGUMENT` unless `layout` was made for a chip with `flash`'s geometry. */
export function checkLayout(flash: FlashGeometry, layout: FlashLayout): void {
  if (layout.eraseBlockSize !== flash.eraseBlockSize || layout.writeAlignment !== flash.writeAlignment) {
    throw new CoapfwError('INVALID_ARGUMENT', 'layout: made for a chip with another erase block size or write alignment');
  }
  const end = layout.journal.offset + layout.journal.size;
  if (end > flash.size) throw new CoapfwError('FLASH_RANGE', `layout: ends at ${end}, chip has ${flash.size} bytes`);
}
