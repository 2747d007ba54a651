/**
 * What a device's update traffic says about it (issue 14, item 5): no stable
 * identifier in the clear, no power-on time, one traffic pattern per class.
 *
 * Decisions (README, "Privacy: what the traffic says"):
 * - Identity travels only inside coaps. Over coaps the PSK identity already
 *   names the device to the server and to nobody else, so its status
 *   reports go to `/status/<device id>`. Over plain CoAP a report goes to
 *   `/status/<fresh pseudonym>` drawn at each power-on (`anon-` and 64
 *   random bits), never the device id, and without its free-text message,
 *   which can name local things such as a file path: the server still sees
 *   how the update went, an observer cannot link it to the device or to its
 *   reports of another day.
 * - The first check after power-on waits a random time, uniform in
 *   [0, max), on the runtime's monotonic timers, so the first request does
 *   not say when the device was switched on (a power cut of a building
 *   otherwise shows as a burst of checks).
 * - Every check asks for the same resources in the same order with the
 *   same block size (trust chain, revocation list, over coaps the
 *   revocation sequence, then the manifest), whatever the device holds:
 *   whole documents, no version or ETag of the device's own in a request.
 */
import { parseCoapUri } from '../codec/uri.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError } from '../errors.js';
import { sleep } from '../messaging/retry.js';
import type { BootStatus, UpdateStatus } from './report.js';

/** Whether a request to `uri` travels inside DTLS. */
export function isSecureUri(uri: string): boolean {
  return parseCoapUri(uri).scheme === 'coaps';
}

const DEVICE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** A fresh per-power-on report name: 'anon-' and 16 hex digits from the runtime's randomness. */
export function reportPseudonym(random: () => number): string {
  let hex = '';
  for (let i = 0; i < 4; i++) hex += Math.floor(random() * 0x10000).toString(16).padStart(4, '0');
  return `anon-${hex}`;
}

/**
 * The status path for a device: `/status/<deviceId>` when `manifestUri` is
 * coaps, else `/status/<pseudonym>` (see the file comment). `deviceId` is
 * checked as the status tracker checks it (1..64 of [A-Za-z0-9._:-]).
 */
export function statusPathFor(manifestUri: string, deviceId: string, random: () => number): string {
  if (!DEVICE_ID.test(deviceId)) throw new CoapfwError('INVALID_ARGUMENT', `device id: 1..64 of [A-Za-z0-9._:-], got ${JSON.stringify(deviceId)}`);
  return `/status/${isSecureUri(manifestUri) ? deviceId : reportPseudonym(random)}`;
}

/** A report as it may travel to `manifestUri`'s server: over plain CoAP without the free-text message. */
export function reportForChannel<T extends UpdateStatus | BootStatus>(manifestUri: string, status: T): T {
  if (isSecureUri(manifestUri) || !('message' in status) || status.message === undefined) return status;
  const { message: _dropped, ...rest } = status;
  return rest as T;
}

/**
 * Wait a random time uniform in [0, maxMs) on the runtime's timers (never
 * the wall clock); nothing when `maxMs` is 0 or absent. ABORTED on `signal`.
 */
export async function firstCheckDelay(runtime: Runtime, maxMs: number | undefined, signal?: AbortSignal): Promise<number> {
  if (maxMs === undefined || maxMs === 0) return 0;
  const ms = Math.floor(runtime.random() * maxMs);
  await sleep(runtime, ms, signal);
  return ms;
}
