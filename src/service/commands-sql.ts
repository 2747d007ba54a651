/**
 * Device commands (server-initiated and negotiated updates). State changes
 * go through `stepCommand` (fleet.ts) and are written compare-and-set on the
 * state they were computed from, so that of several servers acting on one
 * command at the same moment exactly one succeeds.
 */
import { CoapfwError } from '../errors.js';
import { OPEN_COMMAND_STATES, stepCommand, type CommandEvent, type DeviceCommand, type NewCommand } from './fleet.js';
import { COMMAND_COLUMNS, int, toCommand, type Row } from './rows.js';
import type { Sql, SqlValue, Tx } from './sql.js';
import { checkDeviceId, checkInt, checkLimit, checkOneOf, checkText } from './validate.js';

const OPEN = `(${OPEN_COMMAND_STATES.map((s) => `'${s}'`).join(',')})`;
/** Longest deferral a device may ask for: about 68 years, the most a 31-bit second count holds. */
export const MAX_DEFER_S = 0x7fffffff;

/** Open a command for a device, superseding the open one. */
export async function createCommand(tx: Tx, input: NewCommand, now: number): Promise<DeviceCommand> {
  const deviceId = checkDeviceId(input.deviceId);
  const sequence = checkInt(input.sequence, 'sequence');
  const kind = checkOneOf(input.kind, ['update', 'announce'] as const, 'command kind');
  if (kind === 'announce' && input.notBefore !== undefined) {
    throw new CoapfwError('INVALID_ARGUMENT', 'command: an announce waits for the device to say when (notBefore applies to updates)');
  }
  const notBefore = kind === 'update' ? (input.notBefore === undefined ? now : checkInt(input.notBefore, 'notBefore')) : null;
  const rolloutId = input.rolloutId === undefined ? null : checkInt(input.rolloutId, 'rollout id', 1);
  const device = await tx.get<Row>('SELECT class_id FROM devices WHERE id = ?', [deviceId]);
  if (device === undefined) throw new CoapfwError('NOT_FOUND', `command: unknown device ${deviceId}`);
  const classId = String(device.class_id);
  if ((await tx.get<Row>('SELECT 1 AS x FROM releases WHERE class_id = ? AND sequence = ?', [classId, sequence])) === undefined) {
    throw new CoapfwError('NOT_FOUND', `command: no release ${sequence} for class ${classId}`);
  }
  const open = await tx.get<Row>(`SELECT id FROM device_commands WHERE device_id = ? AND state IN ${OPEN}`, [deviceId]);
  if (open !== undefined) {
    await tx.run(`UPDATE device_commands SET state = 'superseded', finished_at = ? WHERE id = ? AND state IN ${OPEN}`, [now, int(open.id)]);
  }
  // The partial unique index (one open command per device) decides a race between servers.
  const row = await tx.get<Row>(
    `INSERT INTO device_commands (device_id, class_id, sequence, kind, state, created_at, not_before, rollout_id)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING ${COMMAND_COLUMNS}`,
    [deviceId, classId, sequence, kind, kind === 'update' ? 'scheduled' : 'pending', now, notBefore, rolloutId],
  );
  if (row === undefined) throw new CoapfwError('CONFLICT', `command: another command for device ${deviceId} was opened at the same time`);
  tx.changed({ kind: 'command', deviceId, commandId: int(row.id) });
  return toCommand(row);
}

function checkEvent(e: CommandEvent): CommandEvent {
  const type = checkOneOf(e?.type, ['answer', 'trigger', 'done', 'failed', 'cancel', 'supersede'] as const, 'command event');
  return type === 'answer' ? { type, deferS: checkInt((e as { deferS?: unknown }).deferS, 'defer seconds', 0, MAX_DEFER_S) } : ({ type } as CommandEvent);
}

/** Apply an event to a command (compare-and-set on its current state). */
export async function applyCommandEvent(tx: Tx, id: number, input: CommandEvent, detail: string | undefined, now: number): Promise<DeviceCommand> {
  const commandId = checkInt(id, 'command id', 1);
  const event = checkEvent(input);
  const text = detail === undefined ? null : checkText(detail, 'command detail');
  const row = await tx.get<Row>(`SELECT ${COMMAND_COLUMNS} FROM device_commands WHERE id = ?`, [commandId]);
  if (row === undefined) throw new CoapfwError('NOT_FOUND', `command: no command ${commandId}`);
  const current = toCommand(row);
  const step = stepCommand(current.kind, current.state, event, now);
  const opt = (v: number | undefined): SqlValue => (v === undefined ? null : v);
  const updated = await tx.get<Row>(
    `UPDATE device_commands SET state = ?, not_before = COALESCE(?, not_before), answered_at = COALESCE(?, answered_at),
       defer_s = COALESCE(?, defer_s), finished_at = COALESCE(?, finished_at), detail = COALESCE(?, detail)
     WHERE id = ? AND state = ? RETURNING ${COMMAND_COLUMNS}`,
    [step.state, opt(step.notBefore), opt(step.answeredAt), opt(step.deferS), opt(step.finishedAt), text, commandId, current.state],
  );
  if (updated === undefined) throw new CoapfwError('CONFLICT', `command: ${commandId} changed while applying ${event.type}`);
  tx.changed({ kind: 'command', deviceId: current.deviceId, commandId });
  return toCommand(updated);
}

/** One command. */
export async function getCommand(sql: Sql, id: number): Promise<DeviceCommand | undefined> {
  const row = await sql.get<Row>(`SELECT ${COMMAND_COLUMNS} FROM device_commands WHERE id = ?`, [checkInt(id, 'command id', 1)]);
  return row === undefined ? undefined : toCommand(row);
}

/** The open command of a device. */
export async function openCommand(sql: Sql, deviceId: string): Promise<DeviceCommand | undefined> {
  const row = await sql.get<Row>(`SELECT ${COMMAND_COLUMNS} FROM device_commands WHERE device_id = ? AND state IN ${OPEN}`, [checkDeviceId(deviceId)]);
  return row === undefined ? undefined : toCommand(row);
}

/** Scheduled commands due at `now`, oldest first. */
export async function dueCommands(sql: Sql, now: number, limit: number | undefined, maxPage: number): Promise<DeviceCommand[]> {
  const rows = await sql.all<Row>(
    `SELECT ${COMMAND_COLUMNS} FROM device_commands WHERE state = 'scheduled' AND not_before <= ? ORDER BY not_before, id LIMIT ?`,
    [now, checkLimit(limit, maxPage)],
  );
  return rows.map(toCommand);
}

/** A device's commands, newest first. */
export async function listCommands(sql: Sql, deviceId: string, limit: number | undefined, maxPage: number): Promise<DeviceCommand[]> {
  const rows = await sql.all<Row>(`SELECT ${COMMAND_COLUMNS} FROM device_commands WHERE device_id = ? ORDER BY id DESC LIMIT ?`, [
    checkDeviceId(deviceId),
    checkLimit(limit, maxPage),
  ]);
  return rows.map(toCommand);
}

/**
 * Move a scheduled command's `notBefore` (a configuration update waiting for
 * its device to be idle); compare-and-set on the state, CONFLICT when it is
 * no longer scheduled.
 */
export async function postponeCommand(tx: Tx, id: number, notBefore: number): Promise<DeviceCommand> {
  const commandId = checkInt(id, 'command id', 1);
  const row = await tx.get<Row>(`UPDATE device_commands SET not_before = ? WHERE id = ? AND state = 'scheduled' RETURNING ${COMMAND_COLUMNS}`, [
    checkInt(notBefore, 'notBefore'),
    commandId,
  ]);
  if (row === undefined) throw new CoapfwError('CONFLICT', `command: ${commandId} is not scheduled`);
  return toCommand(row);
}
