/**
 * A single-bank device's power-on (boot-inplace.ts): boot the slot when it
 * verifies; otherwise run the recovery loader, the update client started on
 * the update staged in the recovery area, until the slot holds a verified
 * image or the loader gives up for now (no server: it tries again at the
 * next power-on).
 *
 * The recovery loader is `runUpdate` entered at its verify state with the
 * staged envelope (verified again: signature, anti-rollback), so it resumes
 * the overwrite from the journal and finishes the install exactly as the
 * interrupted run would have. When nothing usable is staged (a cut while a
 * newer update was being staged, or a trust change that refuses the staged
 * envelope) it fetches the manifest from the update server instead, and
 * installs that in place from block 0.
 */
import { Journal } from '../flash/journal.js';
import { readStaging } from '../flash/staging.js';
import { bootInPlace, requireSingleBank, type InPlaceBoot } from './boot-inplace.js';
import { installedSequence, reconcileJournal } from './progress.js';
import type { UpdateStatus } from './report.js';
import type { UpdateOptions } from './states.js';
import { runUpdate } from './updater.js';

/**
 * The recovery loader: finish the staged in-place update (or, with nothing
 * usable staged, install the server's manifest in place). Returns its status
 * (also reported like any update's); `installed` means the slot now holds
 * the verified new image.
 */
export async function runRecoveryLoader(opts: UpdateOptions): Promise<UpdateStatus> {
  requireSingleBank(opts.layout, 'runRecoveryLoader');
  const staged = await readStaging(opts.flash, opts.layout.recovery!.staging);
  if (staged) {
    const st = await runUpdate(opts, { name: 'verify', envelope: staged.envelope });
    // `rejected`: the staged envelope is refused (never the case once it overwrote the slot): ask the server.
    if (st.result !== 'rejected' && st.result !== 'up-to-date') return st;
  }
  return runUpdate(opts);
}

/** What {@link powerOnInPlace} did. */
export interface InPlacePowerOn {
  /** The last boot: `run` (a verified image) or `recovery` (the loader gave up for now). */
  readonly boot: InPlaceBoot;
  /** Each recovery loader run, in order. */
  readonly recoveries: readonly UpdateStatus[];
  /** Sequence number of the installed manifest, from the journal. */
  readonly installedSequence: number;
}

/**
 * Power on a single-bank device: boot, and while the slot does not verify
 * run the recovery loader (at most `maxRecoveries` times, default 1), then
 * boot again. A booted image that an interrupted install had already written
 * completely is recorded as installed. `POWER_CUT` propagates; calling this
 * again resumes.
 */
export async function powerOnInPlace(opts: UpdateOptions, { maxRecoveries = 1 }: { maxRecoveries?: number } = {}): Promise<InPlacePowerOn> {
  const recoveries: UpdateStatus[] = [];
  for (;;) {
    const b = await bootInPlace(opts.flash, opts.layout);
    const journal = await Journal.open(opts.flash, opts.layout);
    if (b.state === 'run') {
      await reconcileJournal(journal, b.image.digest);
      return { boot: b, recoveries, installedSequence: installedSequence(journal.latest()) };
    }
    if (recoveries.length >= maxRecoveries) return { boot: b, recoveries, installedSequence: installedSequence(journal.latest()) };
    recoveries.push(await runRecoveryLoader(opts));
  }
}
