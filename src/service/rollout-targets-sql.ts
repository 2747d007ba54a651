/**
 * The queries the rollout engine (rollout-engine.ts) needs beyond the
 * records of rollouts-sql.ts: which devices a wave may still take, the
 * targets of a wave, the confirmation times (timeliness), and the open
 * commands a rollout created (held back on pause and abort). Reads go to the
 * driver; the one write runs in the caller's transaction.
 */
import { CoapfwError } from '../errors.js';
import { OPEN_COMMAND_STATES, TARGET_STATES, type DeviceCommand, type TargetState } from './fleet.js';
import { COMMAND_COLUMNS, int, optInt, toCommand, type Row } from './rows.js';
import type { Sql, SqlValue, Tx } from './sql.js';
import { checkDeviceId, checkInt, checkLimit, checkOneOf } from './validate.js';

/** One device of a rollout, as the engine and the fleet page see it. */
export interface RolloutTarget {
  readonly rolloutId: number;
  readonly deviceId: string;
  readonly wave: number;
  readonly state: TargetState;
  readonly updatedAt: number;
  /** Server wall clock when the device confirmed the rollout's release. */
  readonly confirmedAt: number | undefined;
}

/** Most confirmation times {@link rolloutConfirmations} returns (a rollout of more devices is summarised by its first ones). */
export const MAX_CONFIRMATIONS = 100_000;

const inList = (values: readonly string[]): string => `(${values.map((v) => `'${v}'`).join(',')})`;

async function scope(sql: Sql, rolloutId: number): Promise<{ id: number; classId: string; sequence: number; group: string | null }> {
  const id = checkInt(rolloutId, 'rollout id', 1);
  const row = await sql.get<Row>('SELECT class_id, sequence, group_name FROM rollouts WHERE id = ?', [id]);
  if (row === undefined) throw new CoapfwError('NOT_FOUND', `rollout: no rollout ${id}`);
  return { id, classId: String(row.class_id), sequence: int(row.sequence), group: row.group_name === null ? null : String(row.group_name) };
}

// Devices of the rollout's class (and group) that run an older sequence and are not yet
// targeted by it: the ones a wave may still take. Ordered by id, so that waves are
// reproducible (the canary is the same devices on every server and after a restart).
// The release's vendor too: a class id is only unique per vendor (SUIT's class-id condition checks both).
const CANDIDATES = `FROM devices d WHERE d.class_id = ? {GROUP} AND d.installed_seq < ?
  AND d.vendor_id = (SELECT vendor_id FROM releases WHERE class_id = d.class_id AND sequence = ?)
  AND NOT EXISTS (SELECT 1 FROM rollout_targets t WHERE t.rollout_id = ? AND t.device_id = d.id)`;

function candidateParams(s: Awaited<ReturnType<typeof scope>>): { where: string; params: SqlValue[] } {
  const where = CANDIDATES.replace('{GROUP}', s.group === null ? '' : 'AND d.group_name = ?');
  const params: SqlValue[] = s.group === null ? [s.classId, s.sequence, s.sequence, s.id] : [s.classId, s.group, s.sequence, s.sequence, s.id];
  return { where, params };
}

/** Up to `limit` device ids a wave of the rollout may still take, by id. */
export async function rolloutCandidates(sql: Sql, rolloutId: number, limit: number, maxPage: number): Promise<string[]> {
  const s = await scope(sql, rolloutId);
  const { where, params } = candidateParams(s);
  const rows = await sql.all<Row>(`SELECT d.id ${where} ORDER BY d.id LIMIT ?`, [...params, checkLimit(limit, maxPage)]);
  return rows.map((r) => String(r.id));
}

/** How many devices a wave of the rollout may still take. */
export async function countRolloutCandidates(sql: Sql, rolloutId: number): Promise<number> {
  const s = await scope(sql, rolloutId);
  const { where, params } = candidateParams(s);
  const row = await sql.get<Row>(`SELECT COUNT(*) AS n ${where}`, params);
  return int(row?.n ?? 0);
}

/** Filter of {@link listRolloutTargets}: one wave and/or state, a page after a device id. */
export interface TargetFilter {
  readonly wave?: number;
  readonly state?: TargetState;
  readonly after?: string;
  readonly limit?: number;
}

/** A page of a rollout's targets, by device id. */
export async function listRolloutTargets(sql: Sql, rolloutId: number, filter: TargetFilter, maxPage: number): Promise<RolloutTarget[]> {
  const where = ['rollout_id = ?'];
  const params: SqlValue[] = [checkInt(rolloutId, 'rollout id', 1)];
  if (filter.wave !== undefined) where.push('wave = ?'), params.push(checkInt(filter.wave, 'wave index'));
  if (filter.state !== undefined) where.push('state = ?'), params.push(checkOneOf(filter.state, TARGET_STATES, 'target state'));
  if (filter.after !== undefined) where.push('device_id > ?'), params.push(checkDeviceId(filter.after, 'after'));
  params.push(checkLimit(filter.limit, maxPage));
  const rows = await sql.all<Row>(
    `SELECT rollout_id, device_id, wave, state, updated_at, confirmed_at FROM rollout_targets WHERE ${where.join(' AND ')} ORDER BY device_id LIMIT ?`,
    params,
  );
  return rows.map((r) => ({
    rolloutId: int(r.rollout_id),
    deviceId: String(r.device_id),
    wave: int(r.wave),
    state: r.state as TargetState,
    updatedAt: int(r.updated_at),
    confirmedAt: optInt(r.confirmed_at),
  }));
}

/** Server times at which targets confirmed, oldest first (at most {@link MAX_CONFIRMATIONS}). */
export async function rolloutConfirmations(sql: Sql, rolloutId: number): Promise<number[]> {
  const rows = await sql.all<Row>(
    "SELECT confirmed_at FROM rollout_targets WHERE rollout_id = ? AND state = 'confirmed' AND confirmed_at IS NOT NULL ORDER BY confirmed_at LIMIT ?",
    [checkInt(rolloutId, 'rollout id', 1), MAX_CONFIRMATIONS],
  );
  return rows.map((r) => int(r.confirmed_at));
}

/** Which targets {@link moveRolloutTargets} moves: one wave's, one device's, or both. */
export interface TargetSelector {
  readonly wave?: number;
  readonly deviceId?: string;
}

/**
 * Move the selected targets that are in one of the `from` states to `to`
 * (compare-and-set on the state: a device's report that moved a target in
 * between is never overwritten). Returns how many moved.
 */
export async function moveRolloutTargets(tx: Tx, rolloutId: number, which: TargetSelector, from: readonly TargetState[], to: TargetState, now: number): Promise<number> {
  const id = checkInt(rolloutId, 'rollout id', 1);
  const states = from.map((s) => checkOneOf(s, TARGET_STATES, 'target state'));
  const target = checkOneOf(to, TARGET_STATES, 'target state');
  if (states.length === 0) return 0;
  const where = ['rollout_id = ?', `state IN ${inList(states)}`];
  const params: SqlValue[] = [target, now, ...(target === 'confirmed' ? [now] : []), id];
  if (which.wave !== undefined) where.push('wave = ?'), params.push(checkInt(which.wave, 'wave index'));
  if (which.deviceId !== undefined) where.push('device_id = ?'), params.push(checkDeviceId(which.deviceId));
  const confirmed = target === 'confirmed' ? '?' : 'confirmed_at';
  const n = await tx.run(`UPDATE rollout_targets SET state = ?, updated_at = ?, confirmed_at = ${confirmed} WHERE ${where.join(' AND ')}`, params);
  if (n > 0) tx.changed({ kind: 'rollout', rolloutId: id });
  return n;
}

/** Open commands created for a rollout (pending, scheduled or triggered), by id. */
export async function rolloutOpenCommands(sql: Sql, rolloutId: number, maxPage: number): Promise<DeviceCommand[]> {
  const rows = await sql.all<Row>(`SELECT ${COMMAND_COLUMNS} FROM device_commands WHERE rollout_id = ? AND state IN ${inList(OPEN_COMMAND_STATES)} ORDER BY id LIMIT ?`, [
    checkInt(rolloutId, 'rollout id', 1),
    maxPage,
  ]);
  return rows.map(toCommand);
}

/** A rollout that covers a device (its class, and its group or the whole class), with the device's place in it. */
export interface DeviceRollout {
  readonly rolloutId: number;
  readonly sequence: number;
  readonly rolloutState: string;
  /** Undefined while the device is not a target. */
  readonly targetState: TargetState | undefined;
}

/** Every rollout covering a device, newest release first (the manifest a client-initiated device may see). */
export async function deviceRollouts(sql: Sql, deviceId: string, maxPage: number): Promise<DeviceRollout[]> {
  const id = checkDeviceId(deviceId);
  const rows = await sql.all<Row>(
    `SELECT r.id, r.sequence, r.state, t.state AS target_state FROM devices d
     JOIN rollouts r ON r.class_id = d.class_id AND (r.group_name IS NULL OR r.group_name = d.group_name)
     LEFT JOIN rollout_targets t ON t.rollout_id = r.id AND t.device_id = d.id
     WHERE d.id = ? ORDER BY r.sequence DESC, r.id DESC LIMIT ?`,
    [id, maxPage],
  );
  return rows.map((r) => ({
    rolloutId: int(r.id),
    sequence: int(r.sequence),
    rolloutState: String(r.state),
    targetState: r.target_state === null || r.target_state === undefined ? undefined : (r.target_state as TargetState),
  }));
}
