/**
 * The update service's wire protocol (README "Update service"): the bodies
 * devices and publishers send, checked once here with labelled one-line
 * messages (INVALID_ARGUMENT, answered 4.00), and the representations the
 * server answers with. Bodies are maps with text keys, in CBOR or JSON
 * (src/server/body.ts); unknown keys are ignored, so that newer devices can
 * talk to older servers. Byte strings may also be given as hex text (JSON has
 * no byte strings).
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { CoapfwError } from '../errors.js';
import type { DeviceCommand } from './fleet.js';
import { REPORT_STATES, UPDATE_MODES, URGENCIES, type Device, type DeviceRegistration, type Release, type StatusReport, type Urgency } from './model.js';
import { MAX_DEFER_S } from './commands-sql.js';
import { checkInt, checkName, checkOneOf, checkSha256, checkSuitId, checkText } from './validate.js';

type Body = Readonly<Record<string, unknown>>;

/** What a device says when it registers: POST /d[/<id>] (the id and identity come from the path and the session). */
export type RegisterBody = Omit<DeviceRegistration, 'id' | 'identity'>;

/** A device's answer to an offer: POST /d/<id>/c. */
export interface AnswerBody {
  readonly id: number;
  /** Seconds from now (0 for "now"): devices have no clock. */
  readonly deferS: number;
}

/** A publisher's release: POST /pub/release. */
export interface PublishBody {
  readonly envelope: Uint8Array;
  readonly urgency: Urgency;
  readonly downtimeS?: number;
}

const bad = (msg: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', msg);

/** A CBOR unsigned integer may decode as a bigint; one that fits a safe integer counts as a number. */
function num(v: unknown): unknown {
  return typeof v === 'bigint' && v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function uint(body: Body, key: string, what: string, max = Number.MAX_SAFE_INTEGER): number {
  return checkInt(num(body[key]), `${what}: "${key}"`, 0, max);
}

function optional<T>(body: Body, key: string, read: () => T): T | undefined {
  return body[key] === undefined || body[key] === null ? undefined : read();
}

/** Hex text as it is, bytes as hex. */
function hexOf(v: unknown): unknown {
  return v instanceof Uint8Array ? bytesToHex(v) : v;
}

/** POST /d[/<id>] body. */
export function parseRegister(body: Body): RegisterBody {
  const what = 'register';
  const group = optional(body, 'group', () => checkName(body.group, `${what}: "group"`));
  const digest = optional(body, 'digest', () => checkSha256(hexOf(body.digest), `${what}: "digest"`));
  return {
    vendorId: checkSuitId(hexOf(body.vendor), `${what}: "vendor"`),
    classId: checkSuitId(hexOf(body.class), `${what}: "class"`),
    installedSeq: uint(body, 'seq', what),
    mode: checkOneOf(body.mode, UPDATE_MODES, `${what}: "mode"`),
    ...(digest === undefined ? {} : { runningDigest: digest }),
    ...(group === undefined ? {} : { group }),
  };
}

/** POST /d/<id>/r body, as the store takes it (the store checks the rest: failed needs a reason, done <= total). */
export function parseReport(body: Body): StatusReport {
  const what = 'report';
  const state = checkOneOf(body.state, REPORT_STATES, `${what}: "state"`) as StatusReport['state'];
  const detail = optional(body, 'detail', () => checkText(body.detail, `${what}: "detail"`));
  if ((state === 'failed' || state === 'reverted') && (detail === undefined || detail === '')) throw bad(`${what}: a ${state} report needs "detail" (why)`);
  const done = optional(body, 'done', () => uint(body, 'done', what));
  const total = optional(body, 'total', () => uint(body, 'total', what));
  if ((done === undefined) !== (total === undefined)) throw bad(`${what}: "done" and "total" go together`);
  if (done !== undefined && done > total!) throw bad(`${what}: "done" ${done} is above "total" ${total}`);
  const seq = optional(body, 'seq', () => uint(body, 'seq', what));
  const iseq = optional(body, 'iseq', () => uint(body, 'iseq', what));
  const digest = optional(body, 'digest', () => checkSha256(hexOf(body.digest), `${what}: "digest"`));
  return {
    reportSeq: checkInt(num(body.rseq), `${what}: "rseq"`, 1),
    state,
    ...(seq === undefined ? {} : { sequence: seq }),
    ...(done === undefined ? {} : { progress: { done, total: total! } }),
    ...(detail === undefined ? {} : { detail }),
    ...(iseq === undefined ? {} : { installedSeq: iseq }),
    ...(digest === undefined ? {} : { runningDigest: digest }),
  };
}

/** POST /d/<id>/c body: `{ id, answer: "now" }` or `{ id, answer: "defer", defer: seconds }`. */
export function parseAnswer(body: Body): AnswerBody {
  const what = 'answer';
  const id = checkInt(num(body.id), `${what}: "id"`, 1);
  const answer = checkOneOf(body.answer, ['now', 'defer'] as const, `${what}: "answer"`);
  if (answer === 'now') return { id, deferS: 0 };
  return { id, deferS: uint(body, 'defer', what, MAX_DEFER_S) };
}

/** POST /pub/release body. */
export function parsePublish(body: Body, maxEnvelopeBytes: number): PublishBody {
  const what = 'release';
  const raw = body.envelope;
  let envelope: Uint8Array;
  if (raw instanceof Uint8Array) envelope = raw;
  else if (typeof raw === 'string' && /^([0-9a-fA-F]{2})+$/.test(raw)) envelope = new Uint8Array(Buffer.from(raw, 'hex'));
  else throw bad(`${what}: "envelope" must be the SUIT envelope (a byte string, or hex text in JSON)`);
  if (envelope.length > maxEnvelopeBytes) throw new CoapfwError('TOO_LARGE', `${what}: envelope of ${envelope.length} bytes exceeds ${maxEnvelopeBytes}`);
  const urgency = body.urgency === undefined ? 'normal' : checkOneOf(body.urgency, URGENCIES, `${what}: "urgency"`);
  const downtimeS = optional(body, 'downtime', () => uint(body, 'downtime', what, MAX_DEFER_S));
  return { envelope, urgency, ...(downtimeS === undefined ? {} : { downtimeS }) };
}

/** The 2.04 of a registration: where the device's command and manifest are, and how often to poll. */
export function registerView(device: Device, pollS: number): Record<string, unknown> {
  return { rseq: device.reportSeq, cmd: `/d/${device.id}/c`, manifest: `/m/${device.classId}`, poll: pollS };
}

/**
 * The command resource's representation. Only two states say anything to the
 * device: an announce still waiting for its answer is an offer, a triggered
 * command is an update; everything else (scheduled, finished, none) is
 * `op: none`.
 */
export function commandView(command: DeviceCommand | undefined, release: Release | undefined): Record<string, unknown> {
  if (command === undefined || release === undefined) return { op: 'none' };
  const op = command.state === 'triggered' ? 'update' : command.state === 'pending' && command.kind === 'announce' ? 'offer' : undefined;
  if (op === undefined) return { op: 'none' };
  return {
    op,
    id: command.id,
    class: command.classId,
    seq: command.sequence,
    manifest: `/fw/sha256/${release.envelopeSha256}`,
    urgency: release.urgency,
    downtime: release.downtimeS ?? 0,
  };
}
