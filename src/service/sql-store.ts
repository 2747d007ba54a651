/**
 * {@link Store} over any {@link SqlDriver}: the one set of queries both
 * backends run. Writes are one driver transaction each; reads go straight to
 * the driver.
 */
import type { CommandEvent, DeviceCommand, NewCommand, NewRollout, Rollout, RolloutPatch, RolloutState, TargetState, WaveCounts, WaveState } from './fleet.js';
import * as commands from './commands-sql.js';
import * as devices from './devices-sql.js';
import type { Device, DeviceRegistration, DeviceState, HistoryEntry, NewRelease, NewTrustDocument, Release, StatusReport, TrustDocument, TrustKind, WallClock } from './model.js';
import * as releases from './releases-sql.js';
import * as rollouts from './rollouts-sql.js';
import * as targets from './rollout-targets-sql.js';
import { int } from './rows.js';
import type { SqlDriver } from './sql.js';
import { publish } from '../diagnostics.js';
import type { DeviceFilter, ReportResult, Store, StoreChange, StoreOptions, Unsubscribe } from './store.js';
import { checkInt } from './validate.js';

/** The store on a SQL database. Open one with `openStore` (open.ts), which also migrates the schema. */
export class SqlStore implements Store {
  readonly backend: 'sqlite' | 'postgres';
  private readonly clock: WallClock;
  private readonly maxBlob: number;
  private readonly maxPage: number;

  constructor(
    private readonly driver: SqlDriver,
    options: StoreOptions = {},
  ) {
    this.backend = driver.dialect;
    this.clock = options.clock ?? Date.now;
    this.maxBlob = checkInt(options.maxBlobBytes ?? 64 * 1024 * 1024, 'maxBlobBytes', 1);
    this.maxPage = checkInt(options.maxPageSize ?? 1000, 'maxPageSize', 1);
  }

  /** The server's wall clock, checked: a clock before 1970 or past 2^53 ms would corrupt every timestamp. */
  private now(): number {
    return checkInt(this.clock(), 'store clock');
  }

  registerDevice(reg: DeviceRegistration): Promise<Device> {
    return this.driver.transaction((tx) => devices.registerDevice(tx, reg, this.now()));
  }
  getDevice(id: string): Promise<Device | undefined> {
    return devices.getDevice(this.driver, id);
  }
  getDeviceByIdentity(identity: string): Promise<Device | undefined> {
    return devices.getDeviceByIdentity(this.driver, identity);
  }
  listDevices(filter: DeviceFilter = {}): Promise<Device[]> {
    return devices.listDevices(this.driver, filter, this.maxPage);
  }
  countDevicesByState(classId?: string): Promise<Partial<Record<DeviceState, number>>> {
    return devices.countDevicesByState(this.driver, classId);
  }
  async recordReport(deviceId: string, report: StatusReport): Promise<ReportResult> {
    const result = await this.driver.transaction((tx) => devices.recordReport(tx, deviceId, report, this.now()));
    publish('report', () => ({ deviceId, state: result.device.state, sequence: report.sequence, reportSeq: report.reportSeq }));
    return result;
  }
  listHistory(deviceId: string, options: { limit?: number; before?: number } = {}): Promise<HistoryEntry[]> {
    return devices.listHistory(this.driver, deviceId, options, this.maxPage);
  }

  pruneHistory(before: number): Promise<number> {
    return this.driver.transaction((tx) => devices.pruneHistory(tx, checkInt(before, 'before')));
  }

  async publishRelease(release: NewRelease): Promise<Release> {
    const r = await this.driver.transaction((tx) => releases.publishRelease(tx, release, this.now(), this.maxBlob));
    publish('publish', () => ({ classId: r.classId, sequence: r.sequence, publisher: r.publisher, urgency: r.urgency }));
    return r;
  }
  getRelease(classId: string, sequence: number): Promise<Release | undefined> {
    return releases.getRelease(this.driver, classId, sequence);
  }
  latestRelease(classId: string): Promise<Release | undefined> {
    return releases.latestRelease(this.driver, classId);
  }
  listReleases(options: { classId?: string; limit?: number } = {}): Promise<Release[]> {
    return releases.listReleases(this.driver, options, this.maxPage);
  }
  blobSize(sha256: string): Promise<number | undefined> {
    return releases.blobSize(this.driver, sha256);
  }
  readBlob(sha256: string, offset: number, length: number): Promise<Uint8Array | undefined> {
    return releases.readBlob(this.driver, sha256, offset, length, this.maxBlob);
  }

  createCommand(command: NewCommand): Promise<DeviceCommand> {
    return this.driver.transaction((tx) => commands.createCommand(tx, command, this.now()));
  }
  getCommand(id: number): Promise<DeviceCommand | undefined> {
    return commands.getCommand(this.driver, id);
  }
  openCommand(deviceId: string): Promise<DeviceCommand | undefined> {
    return commands.openCommand(this.driver, deviceId);
  }
  stepCommand(id: number, event: CommandEvent, detail?: string): Promise<DeviceCommand> {
    return this.driver.transaction((tx) => commands.applyCommandEvent(tx, id, event, detail, this.now()));
  }
  dueCommands(limit?: number): Promise<DeviceCommand[]> {
    return commands.dueCommands(this.driver, this.now(), limit, this.maxPage);
  }
  listCommands(deviceId: string, options: { limit?: number } = {}): Promise<DeviceCommand[]> {
    return commands.listCommands(this.driver, deviceId, options.limit, this.maxPage);
  }
  postponeCommand(id: number, notBefore: number): Promise<DeviceCommand> {
    return this.driver.transaction((tx) => commands.postponeCommand(tx, id, notBefore));
  }

  createRollout(rollout: NewRollout): Promise<Rollout> {
    return this.driver.transaction((tx) => rollouts.createRollout(tx, rollout, this.now()));
  }
  getRollout(id: number): Promise<Rollout | undefined> {
    return rollouts.getRollout(this.driver, id);
  }
  listRollouts(options: { classId?: string; state?: RolloutState; limit?: number } = {}): Promise<Rollout[]> {
    return rollouts.listRollouts(this.driver, options, this.maxPage);
  }
  updateRollout(id: number, expected: RolloutState, patch: RolloutPatch): Promise<Rollout> {
    return this.driver.transaction((tx) => rollouts.updateRollout(tx, id, expected, patch, this.now()));
  }
  updateWave(rolloutId: number, index: number, expected: WaveState, state: WaveState): Promise<Rollout> {
    return this.driver.transaction((tx) => rollouts.updateWave(tx, rolloutId, index, expected, state, this.now()));
  }
  addRolloutTargets(rolloutId: number, wave: number, deviceIds: readonly string[]): Promise<number> {
    return this.driver.transaction((tx) => rollouts.addRolloutTargets(tx, rolloutId, wave, deviceIds, this.now()));
  }
  setTargetState(rolloutId: number, deviceId: string, state: TargetState): Promise<void> {
    return this.driver.transaction((tx) => rollouts.setTargetState(tx, rolloutId, deviceId, state, this.now()));
  }
  rolloutCounts(rolloutId: number): Promise<WaveCounts[]> {
    return rollouts.rolloutCounts(this.driver, rolloutId);
  }
  rolloutCandidates(rolloutId: number, limit: number): Promise<string[]> {
    return targets.rolloutCandidates(this.driver, rolloutId, limit, this.maxPage);
  }
  countRolloutCandidates(rolloutId: number): Promise<number> {
    return targets.countRolloutCandidates(this.driver, rolloutId);
  }
  listRolloutTargets(rolloutId: number, filter: targets.TargetFilter = {}): Promise<targets.RolloutTarget[]> {
    return targets.listRolloutTargets(this.driver, rolloutId, filter, this.maxPage);
  }
  rolloutConfirmations(rolloutId: number): Promise<number[]> {
    return targets.rolloutConfirmations(this.driver, rolloutId);
  }
  moveRolloutTargets(rolloutId: number, which: targets.TargetSelector, from: readonly TargetState[], to: TargetState): Promise<number> {
    return this.driver.transaction((tx) => targets.moveRolloutTargets(tx, rolloutId, which, from, to, this.now()));
  }
  rolloutOpenCommands(rolloutId: number): Promise<DeviceCommand[]> {
    return targets.rolloutOpenCommands(this.driver, rolloutId, this.maxPage);
  }
  deviceRollouts(deviceId: string): Promise<targets.DeviceRollout[]> {
    return targets.deviceRollouts(this.driver, deviceId, this.maxPage);
  }

  publishTrustDocument(doc: NewTrustDocument): Promise<TrustDocument> {
    return this.driver.transaction((tx) => releases.publishTrustDocument(tx, doc, this.now(), this.maxBlob));
  }
  listTrustDocuments(kind: TrustKind, scope: string, afterVersion?: number): Promise<TrustDocument[]> {
    return releases.listTrustDocuments(this.driver, kind, scope, afterVersion, this.maxPage);
  }

  subscribe(listener: (change: StoreChange) => void): Unsubscribe {
    return this.driver.onChange(listener);
  }
  async schemaVersion(): Promise<number> {
    const row = await this.driver.get<{ v: unknown }>('SELECT MAX(version) AS v FROM schema_migrations');
    return row?.v === null || row?.v === undefined ? 0 : int(row.v);
  }
  close(): Promise<void> {
    return this.driver.close();
  }
}
