/**
 * One whole device update as a simulated device (and `coapfw device update`)
 * runs it: power on (boot, confirm a pending test image), run the update
 * client, reboot into the new image and let its self-test confirm it. Every
 * outcome ends in one {@link UpdateStatus} that was also reported to the
 * status tracker, a failing power-on or reboot included: those are device
 * failures an operator must hear about, not crashes of the updater.
 */
import { bootStatus, powerOn, type PowerOnOptions, type PowerOnResult } from './device.js';
import { postStatus, type UpdateStatus } from './report.js';
import { endsTheRun, makeStatus } from './session.js';
import type { UpdateOptions } from './states.js';
import { runUpdate, sendReport } from './updater.js';
import { readInstalledSequence } from './progress.js';

/** Options of {@link updateDevice}: those of `runUpdate`, and what happens after an install. */
export interface DeviceUpdateOptions extends UpdateOptions {
  /** After an install, reboot into the test image (a second power-on). Default true. */
  readonly reboot?: boolean;
  /** The new image's self-test at that reboot; false leaves it unconfirmed (it reverts at the next boot). Default: passes. */
  readonly selfTest?: PowerOnOptions['selfTest'];
}

/** What {@link updateDevice} did. */
export interface DeviceUpdateResult {
  /** How the update ended; `failed` with the error when a power-on failed. */
  readonly status: UpdateStatus;
  /** The power-on before the update; undefined when it failed. */
  readonly before?: PowerOnResult;
  /** The device as it runs now: the reboot's power-on after an install, else `before`; undefined when that failed. */
  readonly after?: PowerOnResult;
}

/**
 * Power on, update, reboot. Throws only what `runUpdate` throws (misuse,
 * `POWER_CUT`, `ABORTED`, onStatus failures).
 *
 * @example
 * const client = await openClient(uri);
 * const { status, after } = await updateDevice({ flash, layout, request: client.request, manifestUri: uri, runtime: client.runtime, trust, statusPath: '/status/dev-1' });
 */
export async function updateDevice(opts: DeviceUpdateOptions): Promise<DeviceUpdateResult> {
  let before: PowerOnResult;
  try {
    before = await powerOn(opts.flash, opts.layout);
  } catch (e) {
    if (endsTheRun(e)) throw e;
    const status = makeStatus('failed', undefined, await readInstalledSequence(opts.flash, opts.layout), e);
    await sendReport(opts, status);
    return { status };
  }
  const status = await runUpdate(opts);
  if (status.result !== 'installed' || opts.reboot === false) return { status, before, after: before };
  let after: PowerOnResult;
  try {
    after = await powerOn(opts.flash, opts.layout, { selfTest: opts.selfTest });
  } catch (e) {
    if (endsTheRun(e)) throw e;
    // Installed, but the reboot into it failed: the journal still says `installing`, the next power-on retries.
    const failed = makeStatus('failed', status, await readInstalledSequence(opts.flash, opts.layout), e);
    await sendReport(opts, failed);
    return { status: failed, before };
  }
  const report = bootStatus(after);
  if (report && opts.statusPath !== undefined) await postStatus(opts.request, opts.statusPath, report, opts.signal);
  return { status: { ...status, installedSequence: after.installedSequence }, before, after };
}
