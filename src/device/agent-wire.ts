/**
 * The bodies a device agent exchanges with the update service (the protocol
 * of the README's "Update service" section): registration and its answer,
 * status reports, commands and the answer to an offer. Maps with text keys,
 * sent as CBOR (Content-Format 60); answers are read as CBOR or JSON (50) by
 * their Content-Format. Unknown keys are ignored (forward compatible); a
 * value of the wrong type is a labelled INVALID_ARGUMENT.
 *
 * Network CBOR is walked by suit/cbor.ts's bounded scan before cbor-x sees
 * it, and tags are refused: cbor-x gives several of them meanings of its own.
 */
import { Code, ContentFormat, OptionNumber } from '../codec/numbers.js';
import { decodeUint, getOption, pathOptions, uintOption } from '../codec/options.js';
import type { CoapMessage, CoapOption } from '../codec/message.js';
import type { RequestSpec } from '../core/request.js';
import { UPDATE_MODES, type UpdateMode } from '../core/update-mode.js';
import { CoapfwError } from '../errors.js';
import { decodeCbor, encodeCbor, type CborLimits } from '../suit/cbor.js';

/** How a device gets its updates (the service's UpdateMode: both sides speak it). */
export type AgentMode = UpdateMode;
/** Every mode. */
export const AGENT_MODES: readonly AgentMode[] = UPDATE_MODES;

/** What a device tells the server when it registers (after every power-on). */
export interface Registration {
  /** Vendor and class UUIDs, 32 lower-case hex digits. */
  readonly vendor: string;
  readonly class: string;
  /** Installed (confirmed) sequence number. */
  readonly seq: number;
  /** SHA-256 of the running image, hex. */
  readonly digest?: string;
  readonly mode: AgentMode;
  readonly group?: string;
}

/** The server's answer to a registration. */
export interface RegistrationAnswer {
  /** The device id the server knows the device by. */
  readonly id: string;
  /** Highest report counter the server accepted so far: the next report uses a higher one. */
  readonly rseq: number;
  /** Path of the device's command resource. */
  readonly cmd: string;
  /** Path of the class's newest manifest. */
  readonly manifest: string;
  /** Seconds between re-registrations when no notification comes (the server's choice). */
  readonly poll: number;
}

/** States a report names. */
export type ReportState = 'idle' | 'downloading' | 'downloaded' | 'installing' | 'installed' | 'confirmed' | 'reverted' | 'failed';

/** A status report (its counter `rseq` is added when it is sent). */
export interface AgentReport {
  readonly state: ReportState;
  /** Release sequence concerned. */
  readonly seq?: number;
  readonly done?: number;
  readonly total?: number;
  /** Required for failed and reverted. */
  readonly detail?: string;
  /** New installed sequence and running digest (confirmed, reverted). */
  readonly iseq?: number;
  readonly digest?: string;
}

/** Urgency of a release. */
export type CommandUrgency = 'critical' | 'normal' | 'configuration';

/** An update the server tells the device about: to start now (`update`) or to answer (`offer`). */
export interface CommandOf<Op extends 'update' | 'offer'> {
  readonly op: Op;
  readonly id: number;
  readonly seq: number;
  /** Path of the envelope, `/fw/sha256/<hex>`. */
  readonly manifest: string;
  readonly urgency: CommandUrgency | undefined;
  /** Seconds the device will be unavailable (told before it starts). */
  readonly downtime: number | undefined;
  /** An offer the device already answered (the server says so, after a restart of the device). */
  readonly answered: boolean;
}

/** The device's command resource: nothing, an update to start now, or an offer to answer. */
export type AgentCommand = { readonly op: 'none' } | CommandOf<'update'> | CommandOf<'offer'>;

/** The answer to an offer: now, or after `defer` seconds (relative: the device has no clock). */
export type OfferAnswer = { readonly answer: 'now' } | { readonly answer: 'defer'; readonly defer: number };

/** Bounds on the CBOR of an answer; bodies are a handful of keys. */
const ANSWER_LIMITS: CborLimits = { maxDepth: 4, maxArrayLength: 64, maxItems: 256 };
/** Largest answer body read. */
export const MAX_ANSWER_BYTES = 4096;

const text = new TextDecoder('utf-8', { fatal: true });

/** A POST of `body` as CBOR to `path`. */
export function postCbor(path: string, body: object): RequestSpec {
  return { code: Code.POST, options: [...pathOptions(path), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.CBOR)], payload: encodeCbor(strip(body)) };
}

/**
 * A GET of `path`, with Observe 0 (register) when `observe`. No Accept: it is
 * critical, and the answer's Content-Format says how to read it anyway.
 */
export function getRequest(path: string, observe: boolean): RequestSpec {
  const options: CoapOption[] = observe ? [uintOption(OptionNumber.OBSERVE, 0)] : [];
  return { code: Code.GET, options: [...options, ...pathOptions(path)] };
}

/** Leave out undefined members (CBOR has no "absent"). */
function strip(body: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined));
}

/** Decode an answer body (CBOR or JSON by Content-Format; absent: CBOR, or JSON when it starts with `{`) into a plain map. */
export function decodeBody(msg: CoapMessage, what: string): Record<string, unknown> {
  const payload = msg.payload;
  if (payload.length > MAX_ANSWER_BYTES) throw bad(what, `body of ${payload.length} bytes exceeds ${MAX_ANSWER_BYTES}`);
  const raw = getOption(msg, OptionNumber.CONTENT_FORMAT);
  const cf = raw === undefined ? (payload[0] === 0x7b ? ContentFormat.JSON : ContentFormat.CBOR) : decodeUint(raw);
  let value: unknown;
  try {
    if (cf === ContentFormat.JSON) value = JSON.parse(text.decode(payload));
    else if (cf === ContentFormat.CBOR) value = cborMap(payload, what);
    else throw bad(what, `Content-Format ${cf} (expected CBOR 60 or JSON 50)`);
  } catch (e) {
    if (e instanceof CoapfwError && e.code === 'INVALID_ARGUMENT') throw e;
    throw bad(what, `not valid ${cf === ContentFormat.JSON ? 'JSON' : 'CBOR'}`, e);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad(what, 'expected a map');
  return value as Record<string, unknown>;
}

function cborMap(payload: Uint8Array, what: string): unknown {
  const noTags = (_depth: number, start: number): void => {
    if (payload[start]! >> 5 === 6) throw bad(what, `CBOR tag at byte ${start} (tags are not accepted)`);
  };
  const value = decodeCbor(payload, ANSWER_LIMITS, what, noTags);
  if (!(value instanceof Map)) return value;
  const out: Record<string, unknown> = {};
  // defineProperty: a key such as "__proto__" stays data, never the prototype.
  for (const [k, v] of value) if (typeof k === 'string') Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  return out;
}

function bad(what: string, m: string, cause?: unknown): CoapfwError {
  return new CoapfwError('INVALID_ARGUMENT', `${what}: ${m}`, cause === undefined ? undefined : { cause });
}

function uint(m: Record<string, unknown>, key: string, what: string, optional: true): number | undefined;
function uint(m: Record<string, unknown>, key: string, what: string, optional?: false): number;
function uint(m: Record<string, unknown>, key: string, what: string, optional = false): number | undefined {
  let v = m[key];
  if (v === undefined && optional) return undefined;
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n) v = Number(v);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(what, `"${key}" must be an unsigned integer, got ${describe(v)}`);
  return v;
}

function str(m: Record<string, unknown>, key: string, what: string, optional: true): string | undefined;
function str(m: Record<string, unknown>, key: string, what: string, optional?: false): string;
function str(m: Record<string, unknown>, key: string, what: string, optional = false): string | undefined {
  const v = m[key];
  if (v === undefined && optional) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > 255) throw bad(what, `"${key}" must be text of 1..255 characters, got ${describe(v)}`);
  return v;
}

function path(m: Record<string, unknown>, key: string, what: string): string {
  const v = str(m, key, what);
  if (!v.startsWith('/')) throw bad(what, `"${key}" must be a path starting with /, got ${JSON.stringify(v)}`);
  return v;
}

function describe(v: unknown): string {
  return v === undefined ? 'nothing' : typeof v === 'string' ? JSON.stringify(v.slice(0, 40)) : typeof v;
}

/** The id in a command path `/d/<id>/c`, for a server that does not name it. */
function idOfCommandPath(cmd: string, what: string): string {
  const m = /^\/d\/([^/]+)\/c$/.exec(cmd);
  if (m === null) throw bad(what, `no "id", and "cmd" ${JSON.stringify(cmd)} is not /d/<id>/c`);
  return decodeURIComponent(m[1]!);
}

/** Read a registration answer. */
export function decodeRegistrationAnswer(msg: CoapMessage): RegistrationAnswer {
  const what = 'registration answer';
  const m = decodeBody(msg, what);
  const cmd = path(m, 'cmd', what);
  const poll = uint(m, 'poll', what);
  if (poll < 1) throw bad(what, '"poll" must be at least 1 second');
  return { id: str(m, 'id', what, true) ?? idOfCommandPath(cmd, what), rseq: uint(m, 'rseq', what), cmd, manifest: path(m, 'manifest', what), poll };
}

const URGENCY: readonly CommandUrgency[] = ['critical', 'normal', 'configuration'];

/** Read a command representation. */
export function decodeCommand(msg: CoapMessage): AgentCommand {
  const what = 'command';
  const m = decodeBody(msg, what);
  const op = m.op;
  if (op === 'none') return { op };
  if (op !== 'update' && op !== 'offer') throw bad(what, `"op" must be none, update or offer, got ${describe(op)}`);
  const urgency = str(m, 'urgency', what, true);
  if (urgency !== undefined && !URGENCY.includes(urgency as CommandUrgency)) throw bad(what, `unknown urgency ${JSON.stringify(urgency)}`);
  const answered = m.answered;
  const common = {
    id: uint(m, 'id', what),
    seq: uint(m, 'seq', what),
    manifest: path(m, 'manifest', what),
    urgency: urgency as CommandUrgency | undefined,
    downtime: uint(m, 'downtime', what, true),
    answered: answered === 'now' || answered === 'defer' || answered === true,
  };
  return op === 'update' ? { op, ...common } : { op, ...common };
}

/** The body of a registration. */
export function registrationBody(r: Registration): object {
  return { vendor: r.vendor, class: r.class, seq: r.seq, digest: r.digest, mode: r.mode, group: r.group };
}

/** The body of a report with counter `rseq`. */
export function reportBody(rseq: number, r: AgentReport): object {
  return { rseq, state: r.state, seq: r.seq, done: r.done, total: r.total, detail: r.detail?.slice(0, 200), iseq: r.iseq, digest: r.digest };
}

/** The body of an answer to offer `id`. */
export function answerBody(id: number, a: OfferAnswer): object {
  return a.answer === 'now' ? { id, answer: 'now' } : { id, answer: 'defer', defer: a.defer };
}
