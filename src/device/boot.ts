/**
 * The boot model: an MCUboot-like bootloader with test / confirm / revert
 * semantics (MCUboot design, "Image swapping" and "Swap status"), running
 * the images in the primary slots and deciding from flash metadata alone.
 *
 * Life of an update, as the device update state machine drives it:
 * 1. The updater writes the new image of every component it updates into
 *    that component's secondary slot (while the running set is `confirmed`),
 *    checks the digests, and calls {@link requestTestBoot} for the set. Then
 *    it reboots.
 * 2. {@link boot} verifies every secondary of the set, swaps the slots of all
 *    of them (power-safe, see boot-swap.ts), marks the new set `testing` and
 *    runs it: mode `test`.
 * 3. The application checks itself and calls {@link confirm} (image-ok).
 *    Boots after that run it in mode `confirmed`.
 * 4. If it reboots without confirming, the next {@link boot} swaps the whole
 *    set back and runs the previous images: mode `reverted`; the rejected
 *    images stay in the secondary slots (described by `state.components`).
 *
 * A set is installed, tested, confirmed and reverted as one (RFC 9124
 * §4.3.16 / draft-ietf-suit-manifest §6: the images of one manifest form one
 * update): either all of its secondaries verify and all are swapped in, or
 * none is; a cut during the swap finishes the swap before anything runs.
 *
 * Guarantees: `boot` never returns while an image whose SHA-256 over its
 * recorded length does not match the recorded digest would run, and a power
 * cut at any point (any write or erase of install, swap, mark, confirm or
 * revert) leaves a state from which the next `boot` runs a verified set,
 * all old or all new.
 */
import { equalBytes } from '@noble/curves/utils.js';
import { CoapfwError } from '../errors.js';
import type { FlashBackend } from '../flash/backend.js';
import { hashArea, sha256Bytes, writeImage } from '../flash/image.js';
import type { FlashArea, FlashLayout } from '../flash/layout.js';
import { BootLog, type BootState, type ComponentImages, type SlotImage } from './boot-state.js';
import { runSwap, startPart } from './boot-swap.js';

/** How the running set was started. */
export type BootMode = 'confirmed' | 'test' | 'reverted';

/** Something the bootloader did during one {@link boot}. */
export type BootAction =
  /** A swap interrupted by a power cut was completed. */
  | 'swap-resumed'
  /** The requested secondary images were swapped in as a test set. */
  | 'installed'
  /** A requested secondary image did not verify; the request was dropped (none was swapped in). */
  | 'secondary-rejected'
  /** An unconfirmed test set was swapped back out. */
  | 'reverted'
  /** A revert was due but a previous image does not verify; the test set runs again. */
  | 'revert-impossible';

/** What {@link boot} started. Images always run from the primary slots. */
export interface BootResult {
  /** The running image of component 0 (verified). */
  readonly image: SlotImage;
  /** The running image of every component (verified; null: the component holds none). */
  readonly images: readonly (SlotImage | null)[];
  readonly mode: BootMode;
  /** What this boot did before starting the images, in order. */
  readonly actions: readonly BootAction[];
  /** The boot state after this boot. */
  readonly state: BootState;
}

async function verifies(flash: FlashBackend, area: FlashArea, image: SlotImage | null): Promise<boolean> {
  if (image === null || image.size > area.size) return false;
  return equalBytes(await hashArea(flash, area, image.size), image.digest);
}

/** Whether the `slot` of every component of the set holds the image its descriptor names. */
async function setVerifies(flash: FlashBackend, layout: FlashLayout, state: BootState, slot: 'primary' | 'secondary'): Promise<boolean> {
  for (const c of state.set) {
    if (!(await verifies(flash, layout.components[c]![slot], state.components[c]![slot]))) return false;
  }
  return true;
}

/** The current boot state, or undefined before a factory image was installed. */
export async function readBootState(flash: FlashBackend, layout: FlashLayout): Promise<BootState | undefined> {
  return (await BootLog.open(flash, layout)).state();
}

/**
 * Provisioning: write `image` (or one image per component, `null` for a
 * component left empty; component 0 needs one) into the primary slots and
 * record them as the confirmed images. Whatever the secondaries hold is
 * forgotten. Returns component 0's image.
 */
export async function installFactoryImage(flash: FlashBackend, layout: FlashLayout, image: Uint8Array | readonly (Uint8Array | null)[]): Promise<SlotImage> {
  const images = image instanceof Uint8Array ? [image] : [...image];
  if (images.length !== layout.components.length || images[0] === null || images[0] === undefined) {
    throw new CoapfwError('INVALID_ARGUMENT', `factory image: expected ${layout.components.length} images (the first one not null), got ${images.length}`);
  }
  images.forEach((img, i) => {
    const slot = layout.components[i]!.primary;
    if (img !== null && img.length > slot.size) throw new CoapfwError('IMAGE_TOO_LARGE', `factory image ${i}: ${img.length} bytes exceed the ${slot.size}-byte slot`);
  });
  const log = await BootLog.open(flash, layout);
  const components: ComponentImages[] = [];
  for (const [i, img] of images.entries()) {
    if (img !== null) await writeImage(flash, layout.components[i]!.primary, img);
    components.push({ primary: img === null ? null : { size: img.length, digest: sha256Bytes(img) }, secondary: null });
  }
  await log.commit({ components, primaryMode: 'confirmed', pending: false, set: [0], swap: null });
  return components[0]!.primary!;
}

/** One image of a test-boot request. */
export interface TestBootImage {
  /** Layout component whose secondary slot holds it. Default 0. */
  readonly component?: number;
  /** SHA-256 of the image (from the verified manifest). */
  readonly imageDigest: Uint8Array;
  /** Image length in bytes. */
  readonly size: number;
}

/** Options of {@link requestTestBoot}: one image (component 0), or `images`, the set. */
export type TestBootRequest = TestBootImage | { readonly images: readonly TestBootImage[] };

function requestedImages(layout: FlashLayout, request: TestBootRequest): { component: number; image: SlotImage }[] {
  const list = 'images' in request ? [...request.images] : [request];
  const bad = (m: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `requestTestBoot: ${m}`);
  if (list.length === 0 || list.length > layout.components.length) throw bad(`1..${layout.components.length} images, got ${list.length}`);
  const out = list.map(({ component = 0, imageDigest, size }) => {
    if (!Number.isInteger(component) || component < 0 || component >= layout.components.length) throw bad(`no component ${component}`);
    if (!(imageDigest instanceof Uint8Array) || imageDigest.length !== 32) throw bad('imageDigest must be 32 bytes');
    if (!Number.isSafeInteger(size) || size < 0) throw bad(`bad size ${size}`);
    const slot = layout.components[component]!.secondary;
    if (size > slot.size) throw new CoapfwError('IMAGE_TOO_LARGE', `requestTestBoot: ${size} bytes exceed the ${slot.size}-byte slot`);
    return { component, image: { size, digest: imageDigest.slice() } };
  });
  if (new Set(out.map((x) => x.component)).size !== out.length) throw bad('a component appears twice');
  return out.sort((a, b) => a.component - b.component);
}

/**
 * After the updater wrote (and verified) the new images in the secondary
 * slots: ask the next {@link boot} to run them, as one set, in test mode.
 * Re-checks every slot's digest (`DIGEST_MISMATCH`) and requires the running
 * set to be confirmed (`BOOT_STATE`), since the secondaries hold its
 * fallback otherwise. One boot-log record.
 */
export async function requestTestBoot(flash: FlashBackend, layout: FlashLayout, request: TestBootRequest): Promise<void> {
  notSingleBank(layout, 'requestTestBoot');
  const wanted = requestedImages(layout, request);
  const log = await BootLog.open(flash, layout);
  const state = log.state();
  if (state === undefined || state.swap !== null || state.primaryMode !== 'confirmed') {
    throw new CoapfwError('BOOT_STATE', 'requestTestBoot: the running image must be confirmed first');
  }
  const components = state.components.map((c) => ({ ...c }));
  for (const { component, image } of wanted) {
    if (!(await verifies(flash, layout.components[component]!.secondary, image))) {
      throw new CoapfwError('DIGEST_MISMATCH', `requestTestBoot: the secondary slot of component ${component} does not hold the image with this digest`);
    }
    components[component] = { ...components[component]!, secondary: image };
  }
  await log.commit({ ...state, components, set: wanted.map((w) => w.component), pending: true });
}

/**
 * Confirm the running test set (MCUboot's image-ok): it is kept on the
 * following boots. Returns false (and writes nothing) when the running set
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

/** A/B operations have nothing to swap with on a single-bank layout (boot-inplace.ts is its boot model). */
function notSingleBank(layout: FlashLayout, what: string): void {
  if (layout.recovery) throw new CoapfwError('BOOT_STATE', `${what}: the layout is single-bank (no secondary slot): use bootInPlace`);
}

/** Start a swap of `kind` of the whole set from `state` and run it to the end. */
async function swap(flash: FlashBackend, layout: FlashLayout, log: BootLog, state: BootState, kind: 'install' | 'revert'): Promise<BootState> {
  const started = await log.commit({ ...state, pending: false, swap: startPart(state, kind, 0, flash.eraseBlockSize) });
  return runSwap(flash, layout, log, started);
}

/**
 * The bootloader: finish any interrupted swap, install a requested test
 * set, revert an unconfirmed one, verify the primary images and say what
 * to run. Throws `NO_BOOTABLE_IMAGE` when a running image does not verify
 * (or none was ever installed); `POWER_CUT` propagates from the flash, after
 * which calling `boot` again resumes.
 */
export async function boot(flash: FlashBackend, layout: FlashLayout): Promise<BootResult> {
  notSingleBank(layout, 'boot');
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
    if (await setVerifies(flash, layout, state, 'secondary')) {
      actions.push('installed');
      state = await swap(flash, layout, log, state, 'install');
    } else {
      // All or nothing: one bad image drops the whole request.
      actions.push('secondary-rejected');
      const inSet = new Set(state.set);
      state = await log.commit({ ...state, pending: false, components: state.components.map((c, i) => (inSet.has(i) ? { ...c, secondary: null } : c)) });
    }
  }
  // A test set that was already booted once and not confirmed, or that
  // does not verify after the swap: go back to the previous images.
  const running = await primariesVerify(flash, layout, state);
  const primaryOk = state.set.every((c) => running[c]);
  if (state.primaryMode === 'testing' || (state.primaryMode === 'test-pending' && !primaryOk)) {
    if (await setVerifies(flash, layout, state, 'secondary')) {
      actions.push('reverted');
      mode = 'reverted';
      state = await swap(flash, layout, log, state, 'revert');
      return finish(flash, layout, state, mode, actions);
    }
    actions.push('revert-impossible');
  }
  if (state.primaryMode === 'test-pending') {
    // Record that the test set was started before running it, so that a
    // crash or reset before confirm() reverts it on the next boot.
    state = await log.commit({ ...state, primaryMode: 'testing' });
  }
  if (state.primaryMode !== 'confirmed') mode = 'test';
  return finish(flash, layout, state, mode, actions, running);
}

/** Per component: its primary holds no image (nothing to run) or the image its descriptor names. */
async function primariesVerify(flash: FlashBackend, layout: FlashLayout, state: BootState): Promise<boolean[]> {
  const out: boolean[] = [];
  for (const [i, c] of state.components.entries()) out.push(c.primary === null || (await verifies(flash, layout.components[i]!.primary, c.primary)));
  return out;
}

/** Check every component's running image (component 0 must have one) and build the result. */
async function finish(flash: FlashBackend, layout: FlashLayout, state: BootState, mode: BootMode, actions: BootAction[], known?: boolean[]): Promise<BootResult> {
  const images = state.components.map((c) => c.primary);
  if (images[0] === null || images[0] === undefined) throw new CoapfwError('NO_BOOTABLE_IMAGE', 'boot: no image in the primary slot');
  const ok = known ?? (await primariesVerify(flash, layout, state));
  const bad = ok.indexOf(false);
  if (bad >= 0) throw new CoapfwError('NO_BOOTABLE_IMAGE', `boot: the primary image${images.length > 1 ? ` of component ${bad}` : ''} does not verify`);
  return { image: images[0], images, mode, actions, state };
}
