/**
 * A simulated device's life around the update client: provisioning, and
 * what happens at every power-on: the bootloader runs (device/boot.ts), the
 * application checks a test image and confirms it (MCUboot's image-ok), and
 * the journal learns that the new manifest is now the installed one.
 */
import type { FlashBackend } from '../flash/backend.js';
import { sha256Bytes } from '../flash/image.js';
import { DIGEST_PREFIX_SIZE, Journal, digestPrefix, idleResumeRecord } from '../flash/journal.js';
import type { FlashLayout } from '../flash/layout.js';
import { boot, confirm, installFactoryImage, type BootResult } from './boot.js';
import { runningSetDigest } from './boot-state.js';
import { installedSequence, reconcileJournal, revertedBootRecord } from './progress.js';
import type { BootStatus } from './report.js';
import type { TrustState } from '../suit/trust-set.js';
import { provisionTrust } from './trust-device.js';

/** What a power-on did about an update. */
export type PowerOnOutcome =
  /** Nothing to do: the running image was already confirmed. */
  | 'none'
  /** A new image ran in test mode, passed its self-test and is now confirmed and recorded. */
  | 'confirmed'
  /** A test image failed its self-test and was not confirmed: the next boot reverts it. */
  | 'unconfirmed'
  /** The bootloader reverted an unconfirmed test image. */
  | 'reverted';

/** Result of {@link powerOn}. */
export interface PowerOnResult {
  readonly boot: BootResult;
  readonly outcome: PowerOnOutcome;
  /** Sequence number of the confirmed running manifest, from the journal. */
  readonly installedSequence: number;
}

/** Options of {@link powerOn}. */
export interface PowerOnOptions {
  /** The application's check of a test image; false leaves it unconfirmed. Default: passes. */
  readonly selfTest?: (boot: BootResult) => boolean | Promise<boolean>;
}

/**
 * Provisioning: install `image` (or one image per layout component, null
 * for one left empty) as the confirmed factory images, erase the resume
 * journal (whatever format it held) and record `sequence` (default 0) as the
 * installed manifest sequence number. Also the way out of a
 * `JOURNAL_CORRUPT` journal. With `trust`, also write the initial trust state
 * into the layout's trust area (device/trust-device.ts: `initialTrustState(set,
 * ownerKey)`); without it the trust area is left as it is. A cut during
 * provisioning: provision again.
 */
export async function provisionDevice(flash: FlashBackend, layout: FlashLayout, image: Uint8Array | readonly (Uint8Array | null)[], sequence = 0, trust?: TrustState): Promise<void> {
  if (trust !== undefined) await provisionTrust(flash, layout, trust);
  await installFactoryImage(flash, layout, image);
  const first = image instanceof Uint8Array ? image : image[0]!;
  const journal = await Journal.reset(flash, layout);
  // No envelope installed the factory image: its prefix stays zeros.
  await journal.append(idleResumeRecord(sequence, { envelopeDigestPrefix: new Uint8Array(DIGEST_PREFIX_SIZE), imageDigestPrefix: digestPrefix(sha256Bytes(first)) }));
}

/**
 * Power on: boot, confirm a test image whose self-test passes, and record
 * a confirmed new image's sequence number in the journal. Power-safe: a
 * cut anywhere is recovered by the next `powerOn` (`POWER_CUT` propagates).
 * Throws `JOURNAL_CORRUPT` (after the boot, before any confirm) when the
 * journal holds records this firmware cannot read (see `Journal.latest`).
 */
export async function powerOn(flash: FlashBackend, layout: FlashLayout, options: PowerOnOptions = {}): Promise<PowerOnResult> {
  const r = await boot(flash, layout);
  const journal = await Journal.open(flash, layout);
  const before = journal.latest();
  let outcome: PowerOnOutcome = 'none';
  if (r.mode === 'test') {
    if (options.selfTest && !(await options.selfTest(r))) {
      return { boot: r, outcome: 'unconfirmed', installedSequence: installedSequence(before) };
    }
    await confirm(flash, layout);
    outcome = 'confirmed';
  }
  // The journal names an update by its set of images (candidate.ts): one image's digest, or a digest over several.
  const running = runningSetDigest(r.state);
  if (r.mode === 'reverted') {
    outcome = 'reverted';
    // Count the reverted test boot, so that an image that never confirms is given up.
    const counted = revertedBootRecord(before, running);
    if (counted) await journal.append(counted);
  }
  // Also covers a cut between confirm() and the journal record on an earlier power-on.
  if (await reconcileJournal(journal, running)) outcome = 'confirmed';
  return { boot: r, outcome, installedSequence: installedSequence(journal.latest()) };
}

/** The report for the status tracker after a power-on that settled an update; undefined when there is nothing to say. */
export function bootStatus(p: PowerOnResult): BootStatus | undefined {
  if (p.outcome === 'none') return undefined;
  return { result: p.outcome, installedSequence: p.installedSequence, running: Buffer.from(p.boot.image.digest).toString('hex') };
}
