/**
 * Device registry and status history queries: registration, reports (with
 * replay detection), listings. Each write runs inside the caller's
 * transaction; a thrown error rolls all of it back.
 */
import { CoapfwError } from '../errors.js';
import { OPEN_COMMAND_STATES, type TargetState } from './fleet.js';
import { REPORT_STATES, UPDATE_MODES, type Device, type DeviceRegistration, type DeviceState, type HistoryEntry, type StatusReport } from './model.js';
import { DEVICE_COLUMNS, HISTORY_COLUMNS, int, toDevice, toHistory, type Row } from './rows.js';
import type { Sql, SqlValue, Tx } from './sql.js';
import type { DeviceFilter, ReportResult } from './store.js';
import { checkDeviceId, checkInt, checkLimit, checkName, checkOneOf, checkSha256, checkSuitId, checkText } from './validate.js';

const inList = (values: readonly string[]): string => `(${values.map((v) => `'${v}'`).join(',')})`;
const OPEN = inList(OPEN_COMMAND_STATES);
const ACTIVE_ROLLOUT = "('running','paused')";

/** Register (or re-register) a device; the history records it. */
export async function registerDevice(tx: Tx, input: DeviceRegistration, now: number): Promise<Device> {
  const reg = {
    id: checkDeviceId(input.id),
    vendorId: checkSuitId(input.vendorId, 'vendor id'),
    classId: checkSuitId(input.classId, 'class id'),
    installedSeq: checkInt(input.installedSeq, 'installed sequence'),
    runningDigest: input.runningDigest === undefined ? null : checkSha256(input.runningDigest, 'running digest'),
    mode: checkOneOf(input.mode, UPDATE_MODES, 'update mode'),
    group: input.group === undefined ? null : checkName(input.group, 'group'),
    identity: input.identity === undefined ? null : checkName(input.identity, 'identity'),
  };
  if (reg.identity !== null) {
    const holder = await tx.get<Row>('SELECT id FROM devices WHERE identity = ? AND id <> ?', [reg.identity, reg.id]);
    if (holder !== undefined) throw new CoapfwError('CONFLICT', `register: identity '${reg.identity}' belongs to device ${String(holder.id)}`);
  }
  const before = await tx.get<Row>('SELECT state FROM devices WHERE id = ?', [reg.id]);
  // One statement for new and known devices, so two servers registering the same new
  // device at once both succeed. An omitted identity keeps the one bound before.
  const row = await tx.get<Row>(
    `INSERT INTO devices (id, vendor_id, class_id, installed_seq, running_digest, mode, group_name, state, report_seq, identity, registered_at, last_seen)
     VALUES (?, ?, ?, ?, ?, ?, ?, 'registered', 0, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET vendor_id = excluded.vendor_id, class_id = excluded.class_id, installed_seq = excluded.installed_seq,
       running_digest = excluded.running_digest, mode = excluded.mode, group_name = excluded.group_name,
       identity = COALESCE(excluded.identity, devices.identity), last_seen = excluded.last_seen
     RETURNING ${DEVICE_COLUMNS}`,
    [reg.id, reg.vendorId, reg.classId, reg.installedSeq, reg.runningDigest, reg.mode, reg.group, reg.identity, now, now],
  );
  await tx.run('INSERT INTO status_history (device_id, at, transition, from_state, sequence) VALUES (?, ?, ?, ?, ?)', [
    reg.id,
    now,
    'registered',
    before === undefined ? null : String(before.state),
    reg.installedSeq,
  ]);
  tx.changed({ kind: 'device', deviceId: reg.id });
  return toDevice(row!);
}

function checkReport(r: StatusReport): StatusReport {
  const state = checkOneOf(r.state, REPORT_STATES, 'report state') as StatusReport['state'];
  const detail = r.detail === undefined ? undefined : checkText(r.detail, 'report detail');
  if (state === 'failed' && (detail === undefined || detail.length === 0)) {
    throw new CoapfwError('INVALID_ARGUMENT', 'report: a failed report needs a reason (detail)');
  }
  const total = r.progress === undefined ? undefined : checkInt(r.progress.total, 'progress total');
  return {
    reportSeq: checkInt(r.reportSeq, 'report sequence', 1),
    state,
    ...(r.sequence === undefined ? {} : { sequence: checkInt(r.sequence, 'report release sequence') }),
    ...(total === undefined ? {} : { progress: { done: checkInt(r.progress!.done, 'progress done', 0, total), total } }),
    ...(detail === undefined ? {} : { detail }),
    ...(r.installedSeq === undefined ? {} : { installedSeq: checkInt(r.installedSeq, 'installed sequence') }),
    ...(r.runningDigest === undefined ? {} : { runningDigest: checkSha256(r.runningDigest, 'running digest') }),
  };
}

const opt = (v: string | number | undefined): SqlValue => (v === undefined ? null : v);

/**
 * Record a report: device row (conditional on the report counter), history,
 * rollout targets and the open command it concerns. REPORT_REPLAY (nothing
 * written) when the counter is not above the last accepted one.
 */
export async function recordReport(tx: Tx, deviceId: string, input: StatusReport, now: number): Promise<ReportResult> {
  const id = checkDeviceId(deviceId);
  const r = checkReport(input);
  const before = await tx.get<Row>('SELECT class_id, state, report_seq FROM devices WHERE id = ?', [id]);
  if (before === undefined) throw new CoapfwError('NOT_FOUND', `report: unknown device ${id}`);
  const replay = (last: number): CoapfwError =>
    new CoapfwError('REPORT_REPLAY', `report: device ${id} sent report ${r.reportSeq}, but report ${last} was already accepted`);
  if (r.reportSeq <= int(before.report_seq)) throw replay(int(before.report_seq));
  // The counter condition is evaluated again on the committed row (a second server may
  // have accepted a newer report since the SELECT): zero rows means we lost that race.
  const row = await tx.get<Row>(
    `UPDATE devices SET state = ?, report_seq = ?, target_seq = COALESCE(?, target_seq), progress_done = ?, progress_total = ?, detail = ?,
       installed_seq = COALESCE(?, installed_seq), running_digest = COALESCE(?, running_digest), last_seen = ?
     WHERE id = ? AND report_seq < ? RETURNING ${DEVICE_COLUMNS}`,
    [r.state, r.reportSeq, opt(r.sequence), opt(r.progress?.done), opt(r.progress?.total), opt(r.detail), opt(r.installedSeq), opt(r.runningDigest), now, id, r.reportSeq],
  );
  if (row === undefined) throw replay(r.reportSeq);
  const entry = await tx.get<Row>(
    `INSERT INTO status_history (device_id, at, transition, from_state, sequence, report_seq, progress_done, progress_total, detail)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING ${HISTORY_COLUMNS}`,
    [id, now, r.state, String(before.state), opt(r.sequence), r.reportSeq, opt(r.progress?.done), opt(r.progress?.total), opt(r.detail)],
  );
  if (r.sequence !== undefined) {
    await followTargets(tx, id, String(before.class_id), r.sequence, r.state, now);
    await finishCommand(tx, id, r.sequence, r.state, r.detail, now);
  }
  tx.changed({ kind: 'device', deviceId: id });
  return { device: toDevice(row), entry: toHistory(entry!) };
}

/** Target state a report moves a rollout target to, and the states it may move from. */
function targetMove(state: StatusReport['state']): { to: TargetState; from: readonly TargetState[] } | undefined {
  switch (state) {
    case 'downloading':
    case 'downloaded':
    case 'installing':
    case 'installed':
      return { to: 'updating', from: ['pending', 'notified'] };
    case 'confirmed':
      return { to: 'confirmed', from: ['pending', 'notified', 'updating', 'failed', 'reverted'] };
    case 'failed':
      return { to: 'failed', from: ['pending', 'notified', 'updating'] };
    case 'reverted':
      return { to: 'reverted', from: ['pending', 'notified', 'updating', 'confirmed', 'failed'] };
    case 'idle':
      return undefined;
    default: {
      const never: never = state;
      return never;
    }
  }
}

async function followTargets(tx: Tx, deviceId: string, classId: string, sequence: number, state: StatusReport['state'], now: number): Promise<void> {
  const move = targetMove(state);
  if (move === undefined) return;
  const rollouts = await tx.all<Row>(
    `SELECT t.rollout_id FROM rollout_targets t JOIN rollouts r ON r.id = t.rollout_id
     WHERE t.device_id = ? AND r.class_id = ? AND r.sequence = ? AND r.state IN ${ACTIVE_ROLLOUT} AND t.state IN ${inList(move.from)}`,
    [deviceId, classId, sequence],
  );
  for (const { rollout_id } of rollouts) {
    const rolloutId = int(rollout_id);
    await tx.run(
      `UPDATE rollout_targets SET state = ?, updated_at = ?, confirmed_at = ${move.to === 'confirmed' ? '?' : 'confirmed_at'}
       WHERE rollout_id = ? AND device_id = ? AND state IN ${inList(move.from)}`,
      move.to === 'confirmed' ? [move.to, now, now, rolloutId, deviceId] : [move.to, now, rolloutId, deviceId],
    );
    await tx.run('UPDATE rollouts SET updated_at = ? WHERE id = ?', [now, rolloutId]);
    tx.changed({ kind: 'rollout', rolloutId });
  }
}

/** A confirmed report closes the device's open command for that release (or an older one); failed/reverted fails it. */
async function finishCommand(tx: Tx, deviceId: string, sequence: number, state: StatusReport['state'], detail: string | undefined, now: number): Promise<void> {
  const outcome = state === 'confirmed' ? 'done' : state === 'failed' || state === 'reverted' ? 'failed' : undefined;
  if (outcome === undefined) return;
  const open = await tx.get<Row>(
    `SELECT id FROM device_commands WHERE device_id = ? AND state IN ${OPEN} AND ${outcome === 'done' ? 'sequence <= ?' : 'sequence = ?'}`,
    [deviceId, sequence],
  );
  if (open === undefined) return;
  await tx.run(`UPDATE device_commands SET state = ?, finished_at = ?, detail = COALESCE(?, detail) WHERE id = ? AND state IN ${OPEN}`, [
    outcome,
    now,
    opt(detail ?? (state === 'reverted' ? 'reverted' : undefined)),
    int(open.id),
  ]);
  tx.changed({ kind: 'command', deviceId, commandId: int(open.id) });
}

/** One device by id. */
export async function getDevice(sql: Sql, id: string): Promise<Device | undefined> {
  const row = await sql.get<Row>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE id = ?`, [checkDeviceId(id)]);
  return row === undefined ? undefined : toDevice(row);
}

/** The device bound to a credentials identity. */
export async function getDeviceByIdentity(sql: Sql, identity: string): Promise<Device | undefined> {
  const row = await sql.get<Row>(`SELECT ${DEVICE_COLUMNS} FROM devices WHERE identity = ?`, [checkName(identity, 'identity')]);
  return row === undefined ? undefined : toDevice(row);
}

/** A page of devices ordered by id. */
export async function listDevices(sql: Sql, filter: DeviceFilter, maxPage: number): Promise<Device[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (filter.classId !== undefined) where.push('class_id = ?'), params.push(checkSuitId(filter.classId, 'class id'));
  if (filter.group !== undefined) where.push('group_name = ?'), params.push(checkName(filter.group, 'group'));
  if (filter.state !== undefined) where.push('state = ?'), params.push(checkOneOf(filter.state, ['registered', ...REPORT_STATES], 'state'));
  if (filter.after !== undefined) where.push('id > ?'), params.push(checkDeviceId(filter.after, 'after'));
  params.push(checkLimit(filter.limit, maxPage));
  const rows = await sql.all<Row>(`SELECT ${DEVICE_COLUMNS} FROM devices ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`, params);
  return rows.map(toDevice);
}

/** Devices per state. */
export async function countDevicesByState(sql: Sql, classId?: string): Promise<Partial<Record<DeviceState, number>>> {
  const rows =
    classId === undefined
      ? await sql.all<Row>('SELECT state, COUNT(*) AS n FROM devices GROUP BY state')
      : await sql.all<Row>('SELECT state, COUNT(*) AS n FROM devices WHERE class_id = ? GROUP BY state', [checkSuitId(classId, 'class id')]);
  const out: Partial<Record<DeviceState, number>> = {};
  for (const r of rows) out[r.state as DeviceState] = int(r.n);
  return out;
}

/** A device's history, newest first. */
export async function listHistory(sql: Sql, deviceId: string, options: { limit?: number; before?: number }, maxPage: number): Promise<HistoryEntry[]> {
  const id = checkDeviceId(deviceId);
  const limit = checkLimit(options.limit, maxPage);
  const rows =
    options.before === undefined
      ? await sql.all<Row>(`SELECT ${HISTORY_COLUMNS} FROM status_history WHERE device_id = ? ORDER BY id DESC LIMIT ?`, [id, limit])
      : await sql.all<Row>(`SELECT ${HISTORY_COLUMNS} FROM status_history WHERE device_id = ? AND id < ? ORDER BY id DESC LIMIT ?`, [
          id,
          checkInt(options.before, 'before'),
          limit,
        ]);
  return rows.map(toHistory);
}

/** Delete history rows older than `before`, except each device's newest. */
export async function pruneHistory(tx: Tx, before: number): Promise<number> {
  return tx.run('DELETE FROM status_history WHERE at < ? AND id NOT IN (SELECT MAX(id) FROM status_history GROUP BY device_id)', [before]);
}
