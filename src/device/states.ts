/**
 * The update client's states, options and events (RFC 9019 §3: the device
 * side of a firmware update: fetch the manifest, verify, fetch the payload,
 * verify it, install, report). The transition function lives in updater.ts.
 */
import type { Requester } from '../core/request.js';
import type { ResponseStream, StreamListener } from '../messaging/response-stream.js';
import type { DeltaLimits } from '../delta/format.js';
import type { FlashBackend } from '../flash/backend.js';
import type { FlashLayout } from '../flash/layout.js';
import type { RetryPolicy } from '../messaging/retry.js';
import type { Runtime } from '../core/runtime.js';
import type { TrustPolicy } from '../suit/trust.js';
import type { DeviceComponent } from '../suit/trust-scope.js';
import type { CandidateImage } from './candidate.js';
import type { BlockAuthOptions } from './block-auth.js';
import type { UpdateJob } from './progress.js';
import type { UpdateStatus } from './report.js';
import type { TrustPaths } from './trust-refresh.js';

/**
 * An update the client has accepted: the journal's job (for a set of images,
 * `imageDigest` and `size` name the set: candidate.ts) plus every image, in
 * component order, and where its bytes come from.
 */
export interface Candidate extends UpdateJob {
  readonly images: readonly CandidateImage[];
}

/**
 * The states (named as in the issue). Every state but `done` is handled by
 * one branch of `step`:
 * check → verify → download → verify-image → install → report → done,
 * with verify jumping ahead when the journal says part of the work is done,
 * and any state jumping to report on a refusal.
 */
export type UpdateState =
  /** Fetch the SUIT envelope. */
  | { readonly name: 'check' }
  /** Verify it (signature, digest, anti-rollback, vendor/class) and decide, with the journal, where to continue. */
  | { readonly name: 'verify'; readonly envelope: Uint8Array }
  /**
   * Fetch blocks of image `image` (and then of the images after it) from
   * `startBlock` into its component's secondary slot, journalling each
   * completed erase block.
   */
  | {
      readonly name: 'download';
      readonly job: Candidate;
      /** Index into `job.images`. */
      readonly image: number;
      readonly startBlock: number;
      readonly szx: number;
      /** ETag the resumed blocks must carry (RFC 7959 §2.4); undefined when starting at 0. */
      readonly etag: Uint8Array | undefined;
      /** An image built from a delta, resumed: its next frame and where that frame starts in the delta (delta-apply.ts). */
      readonly delta?: { readonly frame: number; readonly deltaOffset: number };
    }
  /**
   * SHA-256 over every slot written against the manifest. `fresh`: every image
   * came in this run; `attempts`: earlier test boots of the set that were reverted.
   */
  | { readonly name: 'verify-image'; readonly job: Candidate; readonly attempts: number; readonly fresh: boolean }
  /** Ask the bootloader for a test boot of the set's secondary slots. */
  | { readonly name: 'install'; readonly job: Candidate; readonly attempts: number }
  /** Tell the status tracker how it ended. */
  | { readonly name: 'report'; readonly status: UpdateStatus }
  | { readonly name: 'done'; readonly status: UpdateStatus };

/** Name of a state. */
export type UpdateStateName = UpdateState['name'];

/** Progress and diagnostics, for a progress bar or a log. */
export type UpdateEvent =
  | { readonly type: 'state'; readonly state: UpdateStateName }
  /** The envelope verified; `imageSize` is the total of its images, `images` how many. */
  | { readonly type: 'envelope'; readonly bytes: number; readonly sequence: number; readonly imageSize: number; readonly images: number }
  | { readonly type: 'resume'; readonly fromBlock: number; readonly blockSize: number; readonly phase: 'fetching' | 'fetched' | 'installing' | 'applying' }
  /** A block of image `image` (its index in the set), at `offset` in that image of `imageSize` bytes. */
  | { readonly type: 'block'; readonly image: number; readonly num: number; readonly offset: number; readonly bytes: number; readonly imageSize: number }
  | { readonly type: 'journal'; readonly nextBlock: number; readonly blockSize: number }
  /**
   * How image `image` is fetched, once per fetched image: Q-Block2 (RFC 9177)
   * or Block2 (RFC 7959). Block2 is told before its first block; Q-Block2
   * once the image is complete (the server may fall back mid-way: RFC 9177 §4.1).
   */
  | { readonly type: 'transfer'; readonly image: number; readonly mode: 'qblock2' | 'block2' }
  /** An image was built from a delta of `frames` frames; `workingMemory`: the applier's RAM in bytes. */
  | { readonly type: 'delta'; readonly frames: number; readonly workingMemory: number }
  | { readonly type: 'restart'; readonly reason: string }
  | { readonly type: 'retry'; readonly attempt: number; readonly delayMs: number; readonly error: string }
  | { readonly type: 'status'; readonly status: UpdateStatus; readonly responseCode: number | undefined }
  /**
   * The trust store was brought up to date before the manifest check
   * (device/trust-refresh.ts): the version and revocation list now held,
   * trust versions `applied` from the chain, whether the store was written,
   * and why a document offered was refused (error codes and messages).
   */
  | {
      readonly type: 'trust';
      readonly version: number;
      readonly revocationSequence: number;
      readonly applied: readonly number[];
      readonly written: boolean;
      readonly chainError?: string;
      readonly chainMessage?: string;
      readonly revocationError?: string;
      readonly revocationMessage?: string;
    };

/** Options of `runUpdate`. Limits all have safe defaults. */
export interface UpdateOptions {
  readonly flash: FlashBackend;
  readonly layout: FlashLayout;
  /** Sends a request to the update server (the manifest's server); see `openClient`. */
  readonly request: Requester;
  /**
   * Requests to the update server whose every response goes to `listener`
   * (`CoapClient.openStream`): with it, images are fetched with Q-Block2
   * (RFC 9177) when the server does it, else Block2. Without it, Block2 only.
   */
  readonly openStream?: (listener: StreamListener) => ResponseStream;
  /** Use Q-Block2 for images when the server does it. Default true (when `openStream` is given). */
  readonly qblock2?: boolean;
  /**
   * Q-Block2: blocks asked for at most this far past the lowest missing one,
   * and the congestion window's ceiling. The reorder memory in front of flash
   * (Q-Block2 blocks arrive in any order, flash is written in order) then
   * holds at most 3 x maxAhead blocks (device/qblock2-download.ts). Default 32.
   */
  readonly maxAhead?: number;
  /** URI of the SUIT envelope (coap:// or coaps://). */
  readonly manifestUri: string;
  /** Clock, timers and randomness: back-off uses nothing else (no wall clock). */
  readonly runtime: Runtime;
  /**
   * The fixed trust policy, for a layout without a trust area. A layout with
   * one (`createLayout(..., { trustAreaSize: TrustStore.areaSize(flash) })`) takes its trust from the
   * trust store on flash, written at provisioning and changed only by signed
   * trust documents; `trust` must then be absent (device/trust-device.ts).
   */
  readonly trust?: TrustPolicy;
  /**
   * The device's components with their vendor/class ids, for the trust
   * store's per-component roles (suit/trust-verify.ts). Default: the
   * layout's component ids.
   */
  readonly components?: readonly DeviceComponent[];
  /** Where the update server serves the trust resources. Default `DEFAULT_TRUST_PATHS`. */
  readonly trustPaths?: Partial<TrustPaths>;
  /** Largest trust chain accepted, in bytes. Default 65536. */
  readonly maxTrustChainBytes?: number;
  /**
   * Wait a random time in [0, firstCheckDelayMs) before the first request,
   * on the runtime's timers, so update traffic does not tell when the device
   * was switched on (device/privacy.ts). Default 0: a device agent that runs
   * `runUpdate` right after power-on should set it (minutes, not seconds).
   */
  readonly firstCheckDelayMs?: number;
  /** Device vendor / class UUIDs (16 bytes); when given the manifest must check them. */
  readonly vendorId?: Uint8Array;
  readonly classId?: Uint8Array;
  /** Block2 size exponent asked for (0..6). Default 6 (1024 bytes). */
  readonly szx?: number;
  /** Per-block retry (inside one download). Default 5 attempts, 1 s base, 30 s max. */
  readonly blockRetry?: RetryPolicy;
  /** Whole-update retries after a transient failure (resuming each time). Default 4 attempts, 2 s base, 60 s max. */
  readonly retry?: RetryPolicy;
  /** Downloads started over (ETag change, bad digest after a resume) before giving up. Default 3. */
  readonly maxRestarts?: number;
  /** Largest envelope accepted, in bytes. Default 16384. */
  readonly maxEnvelopeSize?: number;
  /** Test boots of one image that may be reverted before the manifest is given up. Default 3. */
  readonly maxInstallAttempts?: number;
  /** Per-block authentication limits (block digests in the manifest). */
  readonly blockAuth?: BlockAuthOptions;
  /** Limits a delta's header must satisfy before it is applied (frame size, target size). */
  readonly deltaLimits?: Partial<DeltaLimits>;
  /** Per-request response timeout (NON or after an empty ACK). */
  readonly responseTimeoutMs?: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: (e: UpdateEvent) => void;
  /** Receives the final status report (in addition to the optional POST). */
  readonly onStatus?: (s: UpdateStatus) => void | Promise<void>;
  /** When set, the status is also POSTed as JSON to this path on the update server (best effort). */
  readonly statusPath?: string;
}
