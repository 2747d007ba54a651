/**
 * The update service's records, as the {@link Store} hands them out. Every
 * timestamp is the server's wall clock in milliseconds since the epoch (a
 * device has no clock, RFC 9019 §3; the server stamps what it is told).
 * Vendor and class ids are lower-case hex of their SUIT bytes (a UUID is 32
 * hex digits); digests are lower-case hex SHA-256, which is also the content
 * address an image is served under (`/fw/sha256/<hex>`).
 */

import type { UpdateMode } from '../core/update-mode.js';
export { UPDATE_MODES, type UpdateMode } from '../core/update-mode.js';

/** What a device last said it is doing. `registered` until its first report. */
export type DeviceState = 'registered' | 'idle' | 'downloading' | 'downloaded' | 'installing' | 'installed' | 'confirmed' | 'reverted' | 'failed';
/** Every state a report may name (all but `registered`, which only registration sets). */
export const REPORT_STATES: readonly DeviceState[] = ['idle', 'downloading', 'downloaded', 'installing', 'installed', 'confirmed', 'reverted', 'failed'];

/** A release's urgency: how soon the server pushes it and how fast a rollout widens. */
export type Urgency = 'critical' | 'normal' | 'configuration';
/** Every urgency. */
export const URGENCIES: readonly Urgency[] = ['critical', 'normal', 'configuration'];

/** A registered device. */
export interface Device {
  readonly id: string;
  readonly vendorId: string;
  readonly classId: string;
  /** Anti-rollback sequence number of the installed image. */
  readonly installedSeq: number;
  /** SHA-256 (hex) of the image the device runs, when it said. */
  readonly runningDigest: string | undefined;
  readonly mode: UpdateMode;
  readonly group: string | undefined;
  readonly state: DeviceState;
  /** Sequence number the device is moving to (from its reports). */
  readonly targetSeq: number | undefined;
  /** Bytes downloaded and the image size, while downloading. */
  readonly progress: Progress | undefined;
  /** Last failure or revert reason. */
  readonly detail: string | undefined;
  /** Highest report sequence number accepted (replay detection); 0 before the first report. */
  readonly reportSeq: number;
  /** Credentials identity (coaps PSK identity) the device must report under, when bound. */
  readonly identity: string | undefined;
  readonly registeredAt: number;
  readonly lastSeen: number;
}

/** Download progress in bytes. */
export interface Progress {
  readonly done: number;
  readonly total: number;
}

/** What a device says when it registers (or registers again after a reboot). */
export interface DeviceRegistration {
  readonly id: string;
  readonly vendorId: string;
  readonly classId: string;
  readonly installedSeq: number;
  readonly runningDigest?: string;
  readonly mode: UpdateMode;
  readonly group?: string;
  readonly identity?: string;
}

/** One status report: a state transition of the device. */
export interface StatusReport {
  /** The device's report counter: strictly greater than the last accepted one, or the report is a replay. */
  readonly reportSeq: number;
  readonly state: Exclude<DeviceState, 'registered'>;
  /** The release sequence number the report concerns. */
  readonly sequence?: number;
  readonly progress?: Progress;
  /** Failure or revert reason (required for `failed`). */
  readonly detail?: string;
  /** New installed sequence and running digest, after an install was confirmed (or reverted). */
  readonly installedSeq?: number;
  readonly runningDigest?: string;
}

/** One row of a device's history. */
export interface HistoryEntry {
  readonly id: number;
  readonly deviceId: string;
  /** Server wall clock when the report arrived. */
  readonly at: number;
  /** `registered`, or the state the report moved to. */
  readonly transition: DeviceState;
  readonly fromState: DeviceState | undefined;
  readonly sequence: number | undefined;
  /** The report's sequence number; undefined for registrations. */
  readonly reportSeq: number | undefined;
  readonly progress: Progress | undefined;
  readonly detail: string | undefined;
}

/** An image of a release: one per image the manifest fetches (per component, and per slot for A/B manifests). */
export interface ReleaseImage {
  /** Position of the image in the release: component order, then slot order. */
  readonly component: number;
  readonly sha256: string;
  readonly size: number;
}

/** A published release: a verified envelope and its images, stored under their content addresses. */
export interface Release {
  readonly classId: string;
  readonly vendorId: string;
  readonly sequence: number;
  readonly urgency: Urgency;
  readonly envelopeSha256: string;
  readonly envelopeSize: number;
  readonly images: readonly ReleaseImage[];
  /** Seconds the device is expected to be unavailable while installing (told to it before it starts). */
  readonly downtimeS: number | undefined;
  readonly publishedAt: number;
  /** Identity of the publisher that uploaded it. */
  readonly publisher: string;
}

/** What a publisher hands the store: the bytes; the store computes the content addresses. */
export interface NewRelease {
  readonly classId: string;
  readonly vendorId: string;
  readonly sequence: number;
  readonly urgency: Urgency;
  readonly envelope: Uint8Array;
  /**
   * Images: bytes in component order (component index = position), or
   * {@link NewReleaseImage}s naming their component and giving the bytes or
   * the content address of a blob already stored.
   */
  readonly images: readonly (Uint8Array | NewReleaseImage)[];
  readonly downtimeS?: number;
  readonly publisher: string;
}

/**
 * One image of a new release: its SUIT component index and either its bytes
 * or the SHA-256 and size of a blob the store already holds (an image two
 * releases share, or one a publisher uploaded earlier: no second copy).
 */
export type NewReleaseImage = { readonly component: number } & ({ readonly bytes: Uint8Array } | { readonly sha256: string; readonly size: number });

/** A signed trust document of issue 14, served beside manifests. */
export type TrustKind = 'rotation' | 'revocation' | 'transfer';
/** Every trust document kind. */
export const TRUST_KINDS: readonly TrustKind[] = ['rotation', 'revocation', 'transfer'];

/** A stored trust document (trust update, revocation list, transfer of authority). */
export interface TrustDocument {
  readonly kind: TrustKind;
  /** What it applies to: a vendor id (hex), or '' for the whole service. */
  readonly scope: string;
  /** Trust version or list sequence number: strictly increasing per (kind, scope). */
  readonly version: number;
  readonly sha256: string;
  readonly size: number;
  readonly publishedAt: number;
  readonly publisher: string;
}

/** What a publisher hands the store for a trust document. */
export interface NewTrustDocument {
  readonly kind: TrustKind;
  readonly scope: string;
  readonly version: number;
  readonly bytes: Uint8Array;
  readonly publisher: string;
}

/** Time values are plain numbers: milliseconds of the server's wall clock. */
export type WallClock = () => number;
