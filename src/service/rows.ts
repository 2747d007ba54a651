/**
 * Database rows to records. Both drivers hand back the same column names;
 * they differ in types (pg returns BIGINT as a string, SQLite a number), so
 * every integer goes through {@link int}, which refuses what a JavaScript
 * number cannot hold exactly.
 */
import { CoapfwError } from '../errors.js';
import type { CommandKind, CommandState, DeviceCommand, Rollout, RolloutState, Wave, WaveState } from './fleet.js';
import type { Device, DeviceState, HistoryEntry, Progress, Release, ReleaseImage, TrustDocument, TrustKind, UpdateMode, Urgency } from './model.js';

/** A row as a driver returns it. */
export type Row = Record<string, unknown>;

/** An integer column (number, numeric string or bigint) as a safe integer. */
export function int(v: unknown, column = 'column'): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' || typeof v === 'bigint' ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new CoapfwError('IO_ERROR', `store: ${column} holds ${String(v)}, not a safe integer`);
  return n;
}

/** A nullable integer column. */
export function optInt(v: unknown, column?: string): number | undefined {
  return v === null || v === undefined ? undefined : int(v, column);
}

/** A nullable text column. */
export function optText(v: unknown): string | undefined {
  return v === null || v === undefined ? undefined : String(v);
}

function progress(done: unknown, total: unknown): Progress | undefined {
  return done === null || done === undefined || total === null || total === undefined ? undefined : { done: int(done), total: int(total) };
}

/** The column list of {@link toDevice}. */
export const DEVICE_COLUMNS =
  'id, vendor_id, class_id, installed_seq, running_digest, mode, group_name, state, target_seq, progress_done, progress_total, detail, report_seq, identity, registered_at, last_seen';

/** A `devices` row. */
export function toDevice(r: Row): Device {
  return {
    id: String(r.id),
    vendorId: String(r.vendor_id),
    classId: String(r.class_id),
    installedSeq: int(r.installed_seq, 'installed_seq'),
    runningDigest: optText(r.running_digest),
    mode: r.mode as UpdateMode,
    group: optText(r.group_name),
    state: r.state as DeviceState,
    targetSeq: optInt(r.target_seq, 'target_seq'),
    progress: progress(r.progress_done, r.progress_total),
    detail: optText(r.detail),
    reportSeq: int(r.report_seq, 'report_seq'),
    identity: optText(r.identity),
    registeredAt: int(r.registered_at),
    lastSeen: int(r.last_seen),
  };
}

/** The column list of {@link toHistory}. */
export const HISTORY_COLUMNS = 'id, device_id, at, transition, from_state, sequence, report_seq, progress_done, progress_total, detail';

/** A `status_history` row. */
export function toHistory(r: Row): HistoryEntry {
  return {
    id: int(r.id),
    deviceId: String(r.device_id),
    at: int(r.at),
    transition: r.transition as DeviceState,
    fromState: optText(r.from_state) as DeviceState | undefined,
    sequence: optInt(r.sequence),
    reportSeq: optInt(r.report_seq),
    progress: progress(r.progress_done, r.progress_total),
    detail: optText(r.detail),
  };
}

/** The column list of {@link toRelease}. */
export const RELEASE_COLUMNS = 'class_id, sequence, vendor_id, urgency, envelope_sha256, envelope_size, downtime_s, published_at, publisher';

/** A `releases` row with its `release_images` rows. */
export function toRelease(r: Row, images: readonly Row[]): Release {
  return {
    classId: String(r.class_id),
    vendorId: String(r.vendor_id),
    sequence: int(r.sequence),
    urgency: r.urgency as Urgency,
    envelopeSha256: String(r.envelope_sha256),
    envelopeSize: int(r.envelope_size),
    images: images.map((i): ReleaseImage => ({ component: int(i.component), sha256: String(i.sha256), size: int(i.size) })),
    downtimeS: optInt(r.downtime_s),
    publishedAt: int(r.published_at),
    publisher: String(r.publisher),
  };
}

/** The column list of {@link toCommand}. */
export const COMMAND_COLUMNS = 'id, device_id, class_id, sequence, kind, state, created_at, not_before, answered_at, defer_s, finished_at, detail, rollout_id';

/** A `device_commands` row. */
export function toCommand(r: Row): DeviceCommand {
  return {
    id: int(r.id),
    deviceId: String(r.device_id),
    classId: String(r.class_id),
    sequence: int(r.sequence),
    kind: r.kind as CommandKind,
    state: r.state as CommandState,
    createdAt: int(r.created_at),
    notBefore: optInt(r.not_before),
    answeredAt: optInt(r.answered_at),
    deferS: optInt(r.defer_s),
    finishedAt: optInt(r.finished_at),
    detail: optText(r.detail),
    rolloutId: optInt(r.rollout_id),
  };
}

/** A `rollout_waves` row. */
export function toWave(r: Row): Wave {
  const count = optInt(r.size_count);
  return {
    index: int(r.idx),
    size: count !== undefined ? { count } : { percent: int(r.size_percent) },
    successPermille: int(r.success_permille),
    failurePermille: int(r.failure_permille),
    timeLimitS: int(r.time_limit_s),
    state: r.state as WaveState,
    startedAt: optInt(r.started_at),
    finishedAt: optInt(r.finished_at),
  };
}

/** A `rollouts` row with its waves. */
export function toRollout(r: Row, waves: readonly Row[]): Rollout {
  return {
    id: int(r.id),
    classId: String(r.class_id),
    sequence: int(r.sequence),
    group: optText(r.group_name),
    state: r.state as RolloutState,
    currentWave: int(r.current_wave),
    pauseReason: optText(r.pause_reason),
    createdBy: String(r.created_by),
    createdAt: int(r.created_at),
    updatedAt: int(r.updated_at),
    waves: waves.map(toWave),
  };
}

/** A `trust_documents` row. */
export function toTrust(r: Row): TrustDocument {
  return {
    kind: r.kind as TrustKind,
    scope: String(r.scope),
    version: int(r.version),
    sha256: String(r.sha256),
    size: int(r.size),
    publishedAt: int(r.published_at),
    publisher: String(r.publisher),
  };
}
