/**
 * The update service's database: one {@link Store} interface, two backends
 * with the same schema and the same SQL (SQLite through better-sqlite3 for one
 * box, PostgreSQL through pg for a fleet behind a UDP load balancer).
 *
 * ## Data model (schema version 1, src/service/migrations.ts)
 *
 * - `devices`: one row per device: vendor/class, installed sequence, running
 *   digest, update mode (client/server/negotiated), group, last reported
 *   state with progress and reason, last seen, the credentials identity it
 *   must report under (unique), and `report_seq`, the highest report counter
 *   accepted. A report whose counter is not above it is a replay: refused
 *   with REPORT_REPLAY by a conditional UPDATE, so even two servers racing
 *   with the same report write it once.
 * - `status_history`: every registration and report, stamped with the
 *   server's wall clock (devices have none), with the state it came from and
 *   its report counter (unique per device: a second line of defence).
 * - `blobs` and `blob_chunks`: content-addressed bytes (SHA-256 hex key) of
 *   envelopes, images and trust documents, in 3 KiB chunks so that a Block2
 *   block costs one small row read. In the database, not in a directory, so
 *   that every server sharing the database can serve any block of any image
 *   (stateless Block2) and a release is stored in one transaction with its
 *   bytes: nothing half-uploaded is ever visible.
 * - `releases` (primary key class + sequence) and `release_images` (one row
 *   per image the manifest fetches: per SUIT component, and per slot of an
 *   A/B manifest, so a multi-vendor envelope of issue 14 fits):
 *   urgency, envelope and image addresses and sizes, expected downtime,
 *   publisher, published-at. Two publishers racing for one (class,
 *   sequence): the primary key lets exactly one INSERT through; the other
 *   gets ALREADY_EXISTS and its transaction (blobs included) rolls back.
 * - `device_commands`: the server-initiated and negotiated modes: a command
 *   per device and release, its state machine (src/service/fleet.ts) and the
 *   server time from which it may be triggered (`not_before`: a device's
 *   "defer N s" becomes now + N on the server's clock). A partial unique
 *   index keeps at most one open command per device; triggering is a
 *   compare-and-set so one server of several triggers it.
 * - `rollouts`, `rollout_waves`, `rollout_targets`: a release to a class or a
 *   group in waves with success and failure thresholds (per mille) and time
 *   limits; targets follow the devices' reports inside the report's
 *   transaction, and per-wave counts are computed from the targets, never
 *   kept as counters that could drift. At most one active rollout per class
 *   and group.
 * - `trust_documents`: rotations, revocation lists and transfers of
 *   authority of issue 14, versioned per (kind, scope), bytes in `blobs`.
 * - `schema_migrations`: applied versions with their names. Migrations run on
 *   open, each version once, under a lock (SQLite: BEGIN IMMEDIATE;
 *   PostgreSQL: an advisory lock held by the migrating transaction, so two
 *   servers starting at once on one database migrate it once). A database
 *   migrated by a newer coapfw is refused with DB_SCHEMA.
 *
 * Times are BIGINT milliseconds of the server's wall clock (an injected
 * clock in tests); integers are checked to be safe JavaScript integers.
 *
 * ## Change events
 * {@link Store.subscribe} delivers a {@link StoreChange} after the change is
 * committed. On PostgreSQL every server sharing the database receives it
 * (NOTIFY inside the writing transaction, so only committed changes are
 * announced, LISTEN on a dedicated connection); after that connection was
 * lost and re-established a `resync` event says some may have been missed.
 * On SQLite events stay in the process.
 */
import type { DeviceCommand, CommandEvent, NewCommand, NewRollout, Rollout, RolloutPatch, RolloutState, TargetState, WaveCounts, WaveState } from './fleet.js';
import type { DeviceRollout, RolloutTarget, TargetFilter, TargetSelector } from './rollout-targets-sql.js';
import type { Device, DeviceRegistration, DeviceState, HistoryEntry, NewRelease, NewTrustDocument, Release, StatusReport, TrustDocument, TrustKind, WallClock } from './model.js';

/** Something changed that other servers may have to act on (Observe notifications, schedulers). */
export type StoreChange =
  | { readonly kind: 'release'; readonly classId: string; readonly sequence: number }
  | { readonly kind: 'device'; readonly deviceId: string }
  | { readonly kind: 'command'; readonly deviceId: string; readonly commandId: number }
  | { readonly kind: 'rollout'; readonly rolloutId: number }
  | { readonly kind: 'trust'; readonly trustKind: TrustKind; readonly scope: string; readonly version: number }
  /** Events may have been missed (the PostgreSQL listener reconnected): reload what you cache. */
  | { readonly kind: 'resync' };

/** Options common to both backends; every limit has a safe default. */
export interface StoreOptions {
  /** The server's wall clock in ms since the epoch. Default `Date.now`. */
  readonly clock?: WallClock;
  /** Largest blob (envelope, image) stored. Default 64 MiB. */
  readonly maxBlobBytes?: number;
  /** Largest page a list query returns. Default 1000. */
  readonly maxPageSize?: number;
}

/** Options of a list query: a page of at most `limit` rows after the cursor `after` (an id). */
export interface PageOptions {
  readonly limit?: number;
  readonly after?: string;
}

/** Filter for {@link Store.listDevices}. */
export interface DeviceFilter extends PageOptions {
  readonly classId?: string;
  readonly group?: string;
  readonly state?: DeviceState;
}

/** What a report changed, returned by {@link Store.recordReport}. */
export interface ReportResult {
  readonly device: Device;
  readonly entry: HistoryEntry;
}

/** Unsubscribe from change events. */
export type Unsubscribe = () => void;

/**
 * The update service's persistent state. Every method is atomic: a write
 * either happens completely (one transaction) or not at all. Errors are
 * `CoapfwError`s: INVALID_ARGUMENT (bad input, nothing written), NOT_FOUND,
 * REPORT_REPLAY, ALREADY_EXISTS, CONFLICT (a state changed underneath),
 * DB_SCHEMA, IO_ERROR (the database failed; `cause` holds the driver error).
 */
export interface Store {
  /** `sqlite` or `postgres`. */
  readonly backend: 'sqlite' | 'postgres';

  /** Register a device, or update its registration (installed sequence, digest, mode, group, identity). */
  registerDevice(reg: DeviceRegistration): Promise<Device>;
  getDevice(id: string): Promise<Device | undefined>;
  getDeviceByIdentity(identity: string): Promise<Device | undefined>;
  /** Devices ordered by id, one page at a time. */
  listDevices(filter?: DeviceFilter): Promise<Device[]>;
  /** Devices per state (metrics, the fleet page). */
  countDevicesByState(classId?: string): Promise<Partial<Record<DeviceState, number>>>;
  /**
   * Record a report: the device's state, its history row, the rollout targets
   * and open command it concerns, in one transaction. A report whose
   * `reportSeq` is not above the last accepted one throws REPORT_REPLAY and
   * writes nothing; an unknown device throws NOT_FOUND.
   */
  recordReport(deviceId: string, report: StatusReport): Promise<ReportResult>;
  /** A device's history, newest first, `before` an entry id. */
  listHistory(deviceId: string, options?: { readonly limit?: number; readonly before?: number }): Promise<HistoryEntry[]>;
  /**
   * Delete history older than `before` (server wall clock ms), keeping each
   * device's newest entry; returns how many rows went. Replay detection does
   * not depend on the history (it uses the device's report counter).
   */
  pruneHistory(before: number): Promise<number>;

  /** Store a release and its bytes atomically; ALREADY_EXISTS when (class, sequence) is taken. */
  publishRelease(release: NewRelease): Promise<Release>;
  getRelease(classId: string, sequence: number): Promise<Release | undefined>;
  /** The release with the highest sequence number of a class. */
  latestRelease(classId: string): Promise<Release | undefined>;
  /** Releases newest first, optionally of one class. */
  listReleases(options?: { readonly classId?: string; readonly limit?: number }): Promise<Release[]>;
  /** Size of a stored blob, or undefined. */
  blobSize(sha256: string): Promise<number | undefined>;
  /** `length` bytes of a blob from `offset` (fewer at its end); undefined if there is no such blob. */
  readBlob(sha256: string, offset: number, length: number): Promise<Uint8Array | undefined>;

  /** Open a command for a device, superseding its open one; CONFLICT when another server opened one at the same moment. */
  createCommand(command: NewCommand): Promise<DeviceCommand>;
  getCommand(id: number): Promise<DeviceCommand | undefined>;
  /** The device's open command (pending, scheduled or triggered), if any. */
  openCommand(deviceId: string): Promise<DeviceCommand | undefined>;
  /** Apply an event (src/service/fleet.ts `stepCommand`); CONFLICT when it does not apply in the current state. */
  stepCommand(id: number, event: CommandEvent, detail?: string): Promise<DeviceCommand>;
  /** Scheduled commands whose `notBefore` has passed on the server's clock, oldest first. */
  dueCommands(limit?: number): Promise<DeviceCommand[]>;
  /** A device's commands, newest first (open and finished). */
  listCommands(deviceId: string, options?: { readonly limit?: number }): Promise<DeviceCommand[]>;
  /** Move a scheduled command's `notBefore` (compare-and-set: CONFLICT when it is no longer scheduled). */
  postponeCommand(id: number, notBefore: number): Promise<DeviceCommand>;

  /** Create a rollout (running, all waves pending); CONFLICT when the class/group has an active one. */
  createRollout(rollout: NewRollout): Promise<Rollout>;
  getRollout(id: number): Promise<Rollout | undefined>;
  listRollouts(options?: { readonly classId?: string; readonly state?: RolloutState; readonly limit?: number }): Promise<Rollout[]>;
  /** Change a rollout only while it is in `expected` (compare-and-set across servers); else CONFLICT. */
  updateRollout(id: number, expected: RolloutState, patch: RolloutPatch): Promise<Rollout>;
  /** Move a wave from `expected` to `state` (stamping start or end); else CONFLICT. */
  updateWave(rolloutId: number, index: number, expected: WaveState, state: WaveState): Promise<Rollout>;
  /** Put devices into a wave; devices already targeted by the rollout are left where they are. Returns how many were added. */
  addRolloutTargets(rolloutId: number, wave: number, deviceIds: readonly string[]): Promise<number>;
  /** Set one target's state (for example `notified` when the server told it). */
  setTargetState(rolloutId: number, deviceId: string, state: TargetState): Promise<void>;
  /** Per-wave counts of targets by state. */
  rolloutCounts(rolloutId: number): Promise<WaveCounts[]>;
  /** Up to `limit` devices a wave may still take: the class (and group), an older installed sequence, not yet targeted; by id. */
  rolloutCandidates(rolloutId: number, limit: number): Promise<string[]>;
  /** How many devices a wave may still take. */
  countRolloutCandidates(rolloutId: number): Promise<number>;
  /** A page of a rollout's targets, by device id. */
  listRolloutTargets(rolloutId: number, filter?: TargetFilter): Promise<RolloutTarget[]>;
  /** When targets confirmed (server wall clock), oldest first: the rollout's timeliness. */
  rolloutConfirmations(rolloutId: number): Promise<number[]>;
  /** Move the selected targets in one of `from` to `to` (compare-and-set on the state); returns how many moved. */
  moveRolloutTargets(rolloutId: number, which: TargetSelector, from: readonly TargetState[], to: TargetState): Promise<number>;
  /** Open commands that a rollout created. */
  rolloutOpenCommands(rolloutId: number): Promise<DeviceCommand[]>;
  /** Rollouts covering a device, newest release first, with its target state in each. */
  deviceRollouts(deviceId: string): Promise<DeviceRollout[]>;

  /** Store a trust document; ALREADY_EXISTS when (kind, scope, version) is taken. */
  publishTrustDocument(doc: NewTrustDocument): Promise<TrustDocument>;
  /** Trust documents of a kind and scope with a version above `afterVersion`, oldest first (walking a rotation chain). */
  listTrustDocuments(kind: TrustKind, scope: string, afterVersion?: number): Promise<TrustDocument[]>;

  /** Receive change events (after commit). */
  subscribe(listener: (change: StoreChange) => void): Unsubscribe;
  /** The schema version of the open database. */
  schemaVersion(): Promise<number>;
  /** Close connections; further calls fail with IO_ERROR. Idempotent. */
  close(): Promise<void>;
}
