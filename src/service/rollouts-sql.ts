/**
 * Rollouts, waves and targets. Only the records and their consistency live
 * here (compare-and-set state changes, at most one active rollout per class
 * and group, counts computed from the targets); deciding when a wave starts
 * or the rollout pauses is the service's job.
 */
import { CoapfwError } from '../errors.js';
import {
  canMoveRollout,
  canMoveWave,
  ROLLOUT_STATES,
  TARGET_STATES,
  WAVE_STATES,
  type NewRollout,
  type Rollout,
  type RolloutPatch,
  type RolloutState,
  type TargetState,
  type WaveCounts,
  type WaveSpec,
  type WaveState,
} from './fleet.js';
import { int, toRollout, type Row } from './rows.js';
import type { Sql, SqlValue, Tx } from './sql.js';
import { checkDeviceId, checkInt, checkLimit, checkName, checkOneOf, checkSuitId, checkText } from './validate.js';

/** Most waves in one rollout. */
export const MAX_WAVES = 32;
/** Most devices added to a wave in one call. */
export const MAX_TARGETS_PER_CALL = 10_000;

const ROLLOUT_COLUMNS = 'id, class_id, sequence, group_name, state, current_wave, pause_reason, created_by, created_at, updated_at';
const WAVE_COLUMNS = 'idx, size_count, size_percent, success_permille, failure_permille, time_limit_s, state, started_at, finished_at';

function checkWave(w: WaveSpec, i: number): WaveSpec {
  const what = `wave ${i}`;
  const size = w?.size as { count?: unknown; percent?: unknown } | undefined;
  if (size === undefined || (size.count === undefined) === (size.percent === undefined)) {
    throw new CoapfwError('INVALID_ARGUMENT', `${what}: size needs exactly one of count, percent`);
  }
  return {
    size: size.count !== undefined ? { count: checkInt(size.count, `${what} count`, 1) } : { percent: checkInt(size.percent, `${what} percent`, 1, 100) },
    successPermille: checkInt(w.successPermille, `${what} success per mille`, 0, 1000),
    failurePermille: checkInt(w.failurePermille, `${what} failure per mille`, 0, 1000),
    timeLimitS: checkInt(w.timeLimitS, `${what} time limit`, 1),
  };
}

/** Create a rollout and its waves; CONFLICT when the class/group has an active rollout. */
export async function createRollout(tx: Tx, input: NewRollout, now: number): Promise<Rollout> {
  const classId = checkSuitId(input.classId, 'class id');
  const sequence = checkInt(input.sequence, 'sequence');
  const group = input.group === undefined ? null : checkName(input.group, 'group');
  const createdBy = checkName(input.createdBy, 'created by');
  if (!Array.isArray(input.waves) || input.waves.length < 1 || input.waves.length > MAX_WAVES) {
    throw new CoapfwError('INVALID_ARGUMENT', `rollout: expected 1..${MAX_WAVES} waves`);
  }
  const waves = input.waves.map(checkWave);
  if ((await tx.get<Row>('SELECT 1 AS x FROM releases WHERE class_id = ? AND sequence = ?', [classId, sequence])) === undefined) {
    throw new CoapfwError('NOT_FOUND', `rollout: no release ${sequence} for class ${classId}`);
  }
  // The partial unique index on active rollouts decides a race between two operators.
  const row = await tx.get<Row>(
    `INSERT INTO rollouts (class_id, sequence, group_name, state, created_by, created_at, updated_at)
     VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
    [classId, sequence, group, createdBy, now, now],
  );
  if (row === undefined) throw new CoapfwError('CONFLICT', `rollout: class ${classId}${group === null ? '' : ` group ${group}`} already has an active rollout`);
  const id = int(row.id);
  for (const [i, w] of waves.entries()) {
    const count = 'count' in w.size ? w.size.count : null;
    const percent = 'percent' in w.size ? w.size.percent : null;
    await tx.run(
      `INSERT INTO rollout_waves (rollout_id, idx, size_count, size_percent, success_permille, failure_permille, time_limit_s, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'pending')`,
      [id, i, count, percent, w.successPermille, w.failurePermille, w.timeLimitS],
    );
  }
  tx.changed({ kind: 'rollout', rolloutId: id });
  return (await getRollout(tx, id))!;
}

/** One rollout with its waves. */
export async function getRollout(sql: Sql, id: number): Promise<Rollout | undefined> {
  const rolloutId = checkInt(id, 'rollout id', 1);
  const row = await sql.get<Row>(`SELECT ${ROLLOUT_COLUMNS} FROM rollouts WHERE id = ?`, [rolloutId]);
  if (row === undefined) return undefined;
  const waves = await sql.all<Row>(`SELECT ${WAVE_COLUMNS} FROM rollout_waves WHERE rollout_id = ? ORDER BY idx`, [rolloutId]);
  return toRollout(row, waves);
}

/** Rollouts newest first. */
export async function listRollouts(sql: Sql, options: { classId?: string; state?: RolloutState; limit?: number }, maxPage: number): Promise<Rollout[]> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (options.classId !== undefined) where.push('class_id = ?'), params.push(checkSuitId(options.classId, 'class id'));
  if (options.state !== undefined) where.push('state = ?'), params.push(checkOneOf(options.state, ROLLOUT_STATES, 'rollout state'));
  params.push(checkLimit(options.limit, maxPage));
  const rows = await sql.all<Row>(`SELECT id FROM rollouts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`, params);
  const out: Rollout[] = [];
  for (const r of rows) {
    const rollout = await getRollout(sql, int(r.id));
    if (rollout !== undefined) out.push(rollout);
  }
  return out;
}

async function mustGet(tx: Tx, id: number): Promise<Rollout> {
  const r = await getRollout(tx, id);
  if (r === undefined) throw new CoapfwError('NOT_FOUND', `rollout: no rollout ${id}`);
  return r;
}

/** Compare-and-set change of a rollout. */
export async function updateRollout(tx: Tx, id: number, expected: RolloutState, patch: RolloutPatch, now: number): Promise<Rollout> {
  const from = checkOneOf(expected, ROLLOUT_STATES, 'expected state');
  const to = patch.state === undefined ? from : checkOneOf(patch.state, ROLLOUT_STATES, 'rollout state');
  if (!canMoveRollout(from, to)) throw new CoapfwError('CONFLICT', `rollout: cannot go from ${from} to ${to}`);
  const current = await mustGet(tx, id);
  const sets = ['state = ?', 'updated_at = ?'];
  const params: SqlValue[] = [to, now];
  if (patch.currentWave !== undefined) sets.push('current_wave = ?'), params.push(checkInt(patch.currentWave, 'current wave', 0, current.waves.length - 1));
  if (patch.pauseReason !== undefined) sets.push('pause_reason = ?'), params.push(patch.pauseReason === null ? null : checkText(patch.pauseReason, 'pause reason'));
  const changed = await tx.run(`UPDATE rollouts SET ${sets.join(', ')} WHERE id = ? AND state = ?`, [...params, current.id, from]);
  if (changed === 0) throw new CoapfwError('CONFLICT', `rollout: ${id} is ${current.state}, not ${from}`);
  tx.changed({ kind: 'rollout', rolloutId: current.id });
  return mustGet(tx, current.id);
}

/** Compare-and-set change of a wave's state, stamping when it started or finished. */
export async function updateWave(tx: Tx, id: number, index: number, expected: WaveState, state: WaveState, now: number): Promise<Rollout> {
  const from = checkOneOf(expected, WAVE_STATES, 'expected wave state');
  const to = checkOneOf(state, WAVE_STATES, 'wave state');
  if (!canMoveWave(from, to)) throw new CoapfwError('CONFLICT', `wave: cannot go from ${from} to ${to}`);
  const rollout = await mustGet(tx, id);
  const idx = checkInt(index, 'wave index', 0, rollout.waves.length - 1);
  const stamp = to === 'running' ? 'started_at = ?, finished_at = NULL' : 'finished_at = ?';
  const changed = await tx.run(`UPDATE rollout_waves SET state = ?, ${stamp} WHERE rollout_id = ? AND idx = ? AND state = ?`, [to, now, rollout.id, idx, from]);
  if (changed === 0) throw new CoapfwError('CONFLICT', `wave: ${idx} of rollout ${id} is ${rollout.waves[idx]!.state}, not ${from}`);
  await tx.run('UPDATE rollouts SET updated_at = ? WHERE id = ?', [now, rollout.id]);
  tx.changed({ kind: 'rollout', rolloutId: rollout.id });
  return mustGet(tx, rollout.id);
}

/** Put devices of the rollout's class (and group) into a wave; ones already targeted stay where they are. */
export async function addRolloutTargets(tx: Tx, id: number, wave: number, deviceIds: readonly string[], now: number): Promise<number> {
  if (!Array.isArray(deviceIds) || deviceIds.length > MAX_TARGETS_PER_CALL) {
    throw new CoapfwError('INVALID_ARGUMENT', `rollout targets: expected at most ${MAX_TARGETS_PER_CALL} device ids`);
  }
  const ids = deviceIds.map((d) => checkDeviceId(d));
  const rollout = await mustGet(tx, id);
  const idx = checkInt(wave, 'wave index', 0, rollout.waves.length - 1);
  const inGroup = rollout.group === undefined ? '' : 'AND group_name = ?';
  let added = 0;
  for (const deviceId of ids) {
    const params: SqlValue[] = [rollout.id, idx, now, deviceId, rollout.classId];
    if (rollout.group !== undefined) params.push(rollout.group);
    const n = await tx.run(
      `INSERT INTO rollout_targets (rollout_id, device_id, wave, state, updated_at)
       SELECT CAST(? AS BIGINT), id, CAST(? AS INTEGER), 'pending', CAST(? AS BIGINT) FROM devices WHERE id = ? AND class_id = ? ${inGroup}
       ON CONFLICT (rollout_id, device_id) DO NOTHING`,
      params,
    );
    if (n === 0 && (await tx.get<Row>('SELECT 1 AS x FROM rollout_targets WHERE rollout_id = ? AND device_id = ?', [rollout.id, deviceId])) === undefined) {
      throw new CoapfwError('INVALID_ARGUMENT', `rollout targets: device ${deviceId} is unknown or not in the rollout's class${rollout.group === undefined ? '' : ' and group'}`);
    }
    added += n;
  }
  if (added > 0) tx.changed({ kind: 'rollout', rolloutId: rollout.id });
  return added;
}

/** Set one target's state. */
export async function setTargetState(tx: Tx, id: number, deviceId: string, state: TargetState, now: number): Promise<void> {
  const rolloutId = checkInt(id, 'rollout id', 1);
  const to = checkOneOf(state, TARGET_STATES, 'target state');
  const changed = await tx.run(
    `UPDATE rollout_targets SET state = ?, updated_at = ?, confirmed_at = ${to === 'confirmed' ? '?' : 'confirmed_at'} WHERE rollout_id = ? AND device_id = ?`,
    to === 'confirmed' ? [to, now, now, rolloutId, checkDeviceId(deviceId)] : [to, now, rolloutId, checkDeviceId(deviceId)],
  );
  if (changed === 0) throw new CoapfwError('NOT_FOUND', `rollout targets: device ${deviceId} is not a target of rollout ${rolloutId}`);
  tx.changed({ kind: 'rollout', rolloutId });
}

/** Per-wave counts of targets by state (every wave listed, empty ones with zeros). */
export async function rolloutCounts(sql: Sql, id: number): Promise<WaveCounts[]> {
  const rolloutId = checkInt(id, 'rollout id', 1);
  const waves = await sql.all<Row>('SELECT idx FROM rollout_waves WHERE rollout_id = ? ORDER BY idx', [rolloutId]);
  if (waves.length === 0) throw new CoapfwError('NOT_FOUND', `rollout: no rollout ${rolloutId}`);
  const rows = await sql.all<Row>('SELECT wave, state, COUNT(*) AS n FROM rollout_targets WHERE rollout_id = ? GROUP BY wave, state', [rolloutId]);
  return waves.map((w) => {
    const wave = int(w.idx);
    const byState = Object.fromEntries(TARGET_STATES.map((s) => [s, 0])) as Record<TargetState, number>;
    let targeted = 0;
    for (const r of rows) {
      if (int(r.wave) !== wave) continue;
      byState[r.state as TargetState] = int(r.n);
      targeted += int(r.n);
    }
    return { wave, targeted, byState };
  });
}
