/**
 * The boot model: an MCUboot-like bootloader with test / confirm / revert
 * semantics (MCUboot design, "Image swapping" and "Swap status"), running
 * the image in the primary slot and deciding from flash metadata alone.
 *
 * Life of an update, as the device update state machine drives it:
 * 1. The updater writes the new image into the secondary slot (while the
 *    primary is `confirmed`), checks its digest, and calls
 *    {@link requestTestBoot}. Then it reboots.
 * 2. {@link boot} verifies the secondary, swaps the slots (power-safe, see
 *    boot-swap.ts), marks the new image `testing` and runs it: mode `test`.
 * 3. The application checks itself and calls {@link confirm} (image-ok).
 *    Boots after that run it in mode `confirmed`.
 * 4. If it reboots without confirming, the next {@link boot} swaps back and
 *    runs the previous image: mode `reverted`; the rejected image stays in
 *    the secondary slot (described by `state.secondary`).
 *
 * Guarantees: `boot` never returns an image whose SHA-256 over its recorded
 * length does not match the recorded digest, and a power cut at any point
 * (any write or erase of install, swap, mark, confirm or revert) leaves a
 * state from which the next `boot` runs a verified image, old or new.
 */
import { CoapfwError } from '../errors.js';
import type { FlashBackend } from '../flash/backend.js';
import { hashArea, writeImage } from '../flash/image.js';
import type { FlashArea, FlashLayout } from '../flash/layout.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { BootLog, type BootState, type SlotImage } from './boot-state.js';
import { runSwap, swapBlocks } from './boot-swap.js';
import { equalBytes } from '@noble/curves/utils.js';

/** How the running image was started. */
export type BootMode = 'confirmed' | 'test' | 'reverted';

/** Something the bootloader did during one {@link boot}. */
export type BootAction =
  /** A swap interrupted by a power cut was completed. */
  | 'swap-resumed'
  /** The requested secondary image was swapped in as a test image. */
  | 'installed'
  /** The requested secondary image did not verify; the request was dropped. */
  | 'secondary-rejected'
  /** An unconfirmed test image was swapped back out. */
  | 'reverted'
  /** A revert was due but the previous image does not verify; the test image runs again. */
  | 'revert-impossible';

/** What {@link boot} started. The image always runs from the primary slot. */
export interface BootResult {
  /** The running image (verified). */
  readonly image: SlotImage;
  readonly mode: BootMode;
  /** What this boot did before starting the image, in order. */
  readonly actions: readonly BootAction[];
  /** The boot state after this boot. */
  readonly state: BootState;
}

async function verifies(flash: FlashBackend, area: FlashArea, image: SlotImage | null): Promise<boolean> {
  if (image === null || image.size > area.size) return false;
  return equalBytes(await hashArea(flash, area, image.size), image.digest);
}

/** The current boot state, or undefined before a factory image was installed. */
export async function readBootState(flash: FlashBackend, layout: FlashLayout): Promise<BootState | undefined> {
  return (await BootLog.open(flash, layout)).state();
}

/**
 * Provisioning: write `image` into the primary slot and record it as the
 * confirmed image. Whatever the secondary holds is forgotten.
 */
export async function installFactoryImage(flash: FlashBackend, layout: FlashLayout, image: Uint8Array): Promise<SlotImage> {
  if (image.length > layout.primary.size) {
    throw new CoapfwError('IMAGE_TOO_LARGE', `factory image: ${image.length} bytes exceed the ${layout.primary.size}-byte slot`);
  }
  const log = await BootLog.open(flash, layout);
  await writeImage(flash, layout.primary, image);
  const primary = { size: image.length, digest: sha256(image) };
  await log.commit({ primary, secondary: null, primaryMode: 'confirmed', pending: false, swap: null });
  return primary;
}

/** Options of {@link requestTestBoot}. */
export interface TestBootRequest {
  /** SHA-256 of the image in the secondary slot (from the verified manifest). */
  imageDigest: Uint8Array;
  /** Image length in bytes. */
  size: number;
}

/**
 * After the updater wrote (and verified) the new image in the secondary
 * slot: ask the next {@link boot} to run it in test mode. Re-checks the
 * slot's digest (`DIGEST_MISMATCH`) and requires the running image to be
 * confirmed (`BOOT_STATE`), since the secondary holds its fallback otherwise.
 * One boot-log record.
 */
export async function requestTestBoot(flash: FlashBackend, layout: FlashLayout, request: TestBootRequest): Promise<void> {
  const { imageDigest, size } = request;
  if (!(imageDigest instanceof Uint8Array) || imageDigest.length !== 32) {
    throw new CoapfwError('INVALID_ARGUMENT', 'requestTestBoot: imageDigest must be 32 bytes');
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new CoapfwError('INVALID_ARGUMENT', `requestTestBoot: bad size ${size}`);
  if (size > layout.secondary.size) {
    throw new CoapfwError('IMAGE_TOO_LARGE', `requestTestBoot: ${size} bytes exceed the ${layout.secondary.size}-byte slot`);
  }
  const log = await BootLog.open(flash, layout);
  const state = log.state();
  if (state === undefined || state.swap !== null || state.primaryMode !== 'confirmed') {
    throw new CoapfwError('BOOT_STATE', 'requestTestBoot: the running image must be confirmed first');
  }
  const secondary = { size, digest: imageDigest.slice() };
  if (!(await verifies(flash, layout.secondary, secondary))) {
    throw new CoapfwError('DIGEST_MISMATCH', 'requestTestBoot: the secondary slot does not hold the image with this digest');
  }
  await log.commit({ ...state, secondary, pending: true });
}

/**
 * Confirm the running test image (MCUboot's image-ok): it is kept on the
 * following boots. Returns false (and writes nothing) when the running image
 * is already confirmed. One boot-log record.
 */
export async function confirm(flash: FlashBackend, layout: FlashLayout): Promise<boolean> {
  const log = await BootLog.open(flash, layout);
  const state = log.state();
  if (state === undefined || state.swap !== null) {
    throw new CoapfwError('BOOT_STATE', 'confirm: no running image (boot first)');
  }
  if (state.primaryMode === 'confirmed') return false;
  await log.commit({ ...state, primaryMode: 'confirmed' });
  return true;
}

/** Start a swap of `kind` from `state` and run it to the end. */
async function swap(flash: FlashBackend, layout: FlashLayout, log: BootLog, state: BootState, kind: 'install' | 'revert'): Promise<BootState> {
  const blocks = swapBlocks(state, flash.eraseBlockSize);
  const started = await log.commit({ ...state, pending: false, swap: { kind, blocks, index: 0, step: 0 } });
  return runSwap(flash, layout, log, started);
}

/**
 * The bootloader: finish any interrupted swap, install a requested test
 * image, revert an unconfirmed one, verify the primary image and say what
 * to run. Throws `NO_BOOTABLE_IMAGE` when nothing verifies (or no image was
 * ever installed); `POWER_CUT` propagates from the flash, after which
 * calling `boot` again resumes.
 */
export async function boot(flash: FlashBackend, layout: FlashLayout): Promise<BootResult> {
  const log = await BootLog.open(flash, layout);
  let state = log.state();
  if (state === undefined) throw new CoapfwError('NO_BOOTABLE_IMAGE', 'boot: no boot record (install a factory image)');
  const actions: BootAction[] = [];
  let mode: BootMode = 'confirmed';
  if (state.swap !== null) {
    actions.push('swap-resumed');
    if (state.swap.kind === 'revert') mode = 'reverted';
    state = await runSwap(flash, layout, log, state);
  }
  if (state.pending) {
    if (await verifies(flash, layout.secondary, state.secondary)) {
      actions.push('installed');
      state = await swap(flash, layout, log, state, 'install');
    } else {
      actions.push('secondary-rejected');
      state = await log.commit({ ...state, pending: false, secondary: null });
    }
  }
  // A test image that was already booted once and not confirmed, or that
  // does not verify after the swap: go back to the previous image.
  const primaryOk = await verifies(flash, layout.primary, state.primary);
  if (state.primaryMode === 'testing' || (state.primaryMode === 'test-pending' && !primaryOk)) {
    if (await verifies(flash, layout.secondary, state.secondary)) {
      actions.push('reverted');
      mode = 'reverted';
      state = await swap(flash, layout, log, state, 'revert');
      return finish(flash, layout, state, mode, actions);
    }
    actions.push('revert-impossible');
  }
  if (state.primaryMode === 'test-pending') {
    // Record that the test image was started before running it, so that a
    // crash or reset before confirm() reverts it on the next boot.
    state = await log.commit({ ...state, primaryMode: 'testing' });
  }
  if (state.primaryMode !== 'confirmed') mode = 'test';
  return finish(flash, layout, state, mode, actions, primaryOk);
}

async function finish(
  flash: FlashBackend,
  layout: FlashLayout,
  state: BootState,
  mode: BootMode,
  actions: BootAction[],
  known?: boolean,
): Promise<BootResult> {
  const ok = known ?? (await verifies(flash, layout.primary, state.primary));
  if (!ok || state.primary === null) {
    throw new CoapfwError('NO_BOOTABLE_IMAGE', 'boot: the primary image does not verify');
  }
  return { image: state.primary, mode, actions, state };
}
