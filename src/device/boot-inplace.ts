/**
 * The boot model of a single-bank device (flash/layout.ts
 * `createSingleBankLayout`): one slot, overwritten in place by an update
 * (device/inplace.ts), so there is no swap, no test boot and no revert.
 *
 * At every boot the bootloader hashes the slot and runs it only if it is the
 * image its boot record names (size and SHA-256). Otherwise it does not run
 * anything: it enters the **recovery loader** state, in which the device
 * runs only the small update client of the recovery loader
 * (inplace-device.ts): it takes the staged manifest and digest top list of
 * the interrupted update from the recovery area, resumes the overwrite from
 * the journal (re-fetching what it needs: the blocks after the last
 * journalled erase block, the digest pages that cover them) and, once the
 * whole image hashes to the manifest's digest, records it as the image to
 * run. Without a staged update (the slot broke some other way) it fetches a
 * manifest from the update server instead.
 *
 * So a device never boots an image whose full digest does not match, and a
 * power cut at any flash operation leaves it either running a verified image
 * or in the recovery loader, which finishes the update: never unbootable.
 * A new image runs confirmed at once: with one bank there is nothing to go
 * back to.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes } from '@noble/curves/utils.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { FlashBackend } from '../flash/backend.js';
import { hashArea } from '../flash/image.js';
import { Journal, matchesDigestPrefix, type ResumePhase } from '../flash/journal.js';
import type { FlashLayout } from '../flash/layout.js';
import { readStaging } from '../flash/staging.js';
import { BootLog, type BootState, type SlotImage } from './boot-state.js';

/** What a single-bank boot found. */
export type InPlaceBoot =
  /** The slot holds the image of the boot record: it runs. */
  | { readonly state: 'run'; readonly image: SlotImage; readonly bootState: BootState }
  /**
   * The slot does not hold a verified image: the recovery loader runs.
   * `reason` says whether an update was overwriting it (`overwrite`, with the
   * journal's phase and position; `staged`: its manifest is in the recovery
   * area) or nothing explains it (`image-invalid`).
   */
  | {
      readonly state: 'recovery';
      readonly reason: 'overwrite' | 'image-invalid';
      readonly staged: boolean;
      readonly phase?: ResumePhase;
      readonly nextBlock?: number;
    };

/** Throw INVALID_ARGUMENT unless `layout` is single-bank. */
export function requireSingleBank(layout: FlashLayout, what: string): void {
  if (layout.recovery === undefined) throw new CoapfwError('INVALID_ARGUMENT', `${what}: the layout is not single-bank (use boot() for A/B layouts)`);
}

/** Phases of the journal in which an update is (or may be) overwriting the slot. */
const OVERWRITING: ReadonlySet<ResumePhase> = new Set(['fetching', 'fetched', 'installing']);

/**
 * The bootloader of a single-bank device: run the slot's image if it
 * verifies, else say why the recovery loader must run. Writes nothing.
 * Throws NO_BOOTABLE_IMAGE only for a device that was never provisioned.
 */
export async function bootInPlace(flash: FlashBackend, layout: FlashLayout): Promise<InPlaceBoot> {
  requireSingleBank(layout, 'bootInPlace');
  const state = (await BootLog.open(flash, layout)).state();
  if (state === undefined) throw new CoapfwError('NO_BOOTABLE_IMAGE', 'boot: no boot record (provision the device)');
  const image = state.components[0]!.primary;
  if (image !== null && image.size <= layout.primary.size && equalBytes(await hashArea(flash, layout.primary, image.size), image.digest)) {
    return { state: 'run', image, bootState: state };
  }
  const staged = await readStaging(flash, layout.recovery!.staging);
  let rec;
  try {
    rec = (await Journal.open(flash, layout)).latest();
  } catch (e) {
    // An unreadable journal still leaves the loader to report JOURNAL_CORRUPT; booting the slot is never an option.
    if (!isCoapfwError(e, 'JOURNAL_CORRUPT')) throw e;
  }
  const overwrite = rec !== undefined && OVERWRITING.has(rec.phase) && staged !== undefined && matchesDigestPrefix(sha256(staged.envelope), rec.envelopeDigestPrefix);
  return overwrite
    ? { state: 'recovery', reason: 'overwrite', staged: true, phase: rec!.phase, nextBlock: rec!.nextBlock }
    : { state: 'recovery', reason: 'image-invalid', staged: staged !== undefined };
}

/**
 * The last step of an in-place install, after the slot was hashed against
 * the manifest: the boot record names the new image (one boot-log record,
 * atomic), which from now on is the one that runs.
 */
export async function commitInPlaceImage(flash: FlashBackend, layout: FlashLayout, image: SlotImage): Promise<void> {
  requireSingleBank(layout, 'commitInPlaceImage');
  const log = await BootLog.open(flash, layout);
  const state = log.state();
  if (state === undefined) throw new CoapfwError('BOOT_STATE', 'install: the device was never provisioned');
  await log.commit({ ...state, components: [{ primary: { size: image.size, digest: image.digest.slice() }, secondary: null }], primaryMode: 'confirmed', pending: false, set: [0], swap: null });
}
