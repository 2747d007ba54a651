/**
 * Status reports of the update client (RFC 9019 §3 "status tracker"): a
 * small JSON object describing how an update attempt ended. The client hands
 * it to a callback; {@link postStatus} sends it with a CoAP POST to a status
 * resource on the update server (our file server's tracker takes
 * `POST /status/<device-id>`), one confirmable attempt, since a report must
 * never hold up or fail an update.
 */
import { Code, ContentFormat } from '../codec/numbers.js';
import { pathOptions, uintOption } from '../codec/options.js';
import { OptionNumber } from '../codec/numbers.js';
import type { Requester } from '../core/request.js';

/** How one update attempt ended. */
export type UpdateResultKind =
  /** The new image is in the secondary slot and a test boot is requested: reboot to run it. */
  | 'installed'
  /** The server offers the manifest that is already installed. */
  | 'up-to-date'
  /** The manifest or image failed a security or policy check; the running image stays. */
  | 'rejected'
  /**
   * The update could not complete: network, server, retries exhausted (it
   * resumes next time), an image that kept changing, or a device that cannot
   * update (`error` says which: `BOOT_STATE`, `JOURNAL_CORRUPT`, ...).
   */
  | 'failed';

/** The report of one update attempt. */
export interface UpdateStatus {
  readonly result: UpdateResultKind;
  /**
   * Sequence number of the confirmed running manifest; absent only when the
   * journal could not be read (`JOURNAL_CORRUPT`, `IO_ERROR`): then it is unknown.
   */
  readonly installedSequence?: number;
  /** Sequence number of the manifest offered, when it could be read. */
  readonly candidateSequence?: number;
  /** Image blocks received in this run. */
  readonly blocksFetched: number;
  /** Image blocks not fetched again thanks to the journal (resume). */
  readonly blocksResumed: number;
  /** Downloads started over (ETag changed, interrupted before the first journal record, ...). */
  readonly restarts: number;
  /** Trust version and revocation list sequence held after the check (devices with a trust store). */
  readonly trustVersion?: number;
  readonly revocationSequence?: number;
  /** Error code when result is rejected or failed. */
  readonly error?: string;
  readonly message?: string;
  /** The block the error names, when it names one (a block that failed its digest: nothing of it was written). */
  readonly block?: number;
}

/**
 * What a device reports after the reboot that follows an install: whether
 * the new image passed its self-test and was confirmed, or was reverted.
 */
export interface BootStatus {
  readonly result: 'confirmed' | 'unconfirmed' | 'reverted';
  /** Sequence number of the confirmed running manifest. */
  readonly installedSequence: number;
  /** SHA-256 of the running image, hex. */
  readonly running: string;
}

/** Encode a status for the wire (JSON, Content-Format 50). */
export function encodeStatus(status: UpdateStatus | BootStatus): Uint8Array {
  // Keep reports small (the server's tracker takes up to 512 bytes by default).
  if ('message' in status && status.message !== undefined && status.message.length > 160) {
    status = { ...status, message: `${status.message.slice(0, 157)}...` };
  }
  return new TextEncoder().encode(JSON.stringify(status));
}

/**
 * POST `status` as JSON to `path` on the update server. Resolves with the
 * response code, or undefined when no response came (the error is swallowed:
 * reporting is best effort).
 */
export async function postStatus(request: Requester, path: string, status: UpdateStatus | BootStatus, signal?: AbortSignal): Promise<number | undefined> {
  try {
    const res = await request(
      {
        code: Code.POST,
        options: [...pathOptions(path), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.JSON)],
        payload: encodeStatus(status),
      },
      { signal },
    );
    return res.code;
  } catch {
    return undefined;
  }
}
