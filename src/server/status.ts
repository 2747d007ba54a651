/**
 * The status tracker: devices report how their update went with
 * `POST /status/<device-id>` (a small JSON or CBOR map: state, sequence
 * number, detail); people and tools read `GET /status` (all devices, JSON)
 * or `GET /status/<device-id>`. Bounded in devices and report size.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { serveBlock2 } from '../blockwise/serve.js';
import { bufferSource, type ByteSource } from '../blockwise/source.js';
import { decodeBlock } from '../codec/block.js';
import { Code, ContentFormat, OptionNumber } from '../codec/numbers.js';
import { decodeUint, encodeUint, getOption } from '../codec/options.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import type { Runtime } from '../core/runtime.js';
import { decodeCbor, type CborLimits } from '../suit/cbor.js';
import { CoapfwError } from '../errors.js';
import { peerKey } from '../core/transport.js';
import { errorResponse } from './responses.js';
import type { Resource } from './router.js';

/** What the tracker keeps per device. */
export interface DeviceStatus {
  readonly device: string;
  readonly report: Readonly<Record<string, unknown>>;
  readonly from: string;
  /** Monotonic ms of the server when the report arrived. */
  readonly at: number;
  readonly reports: number;
}

/** Tracker limits. */
export interface StatusOptions {
  readonly runtime: Runtime;
  /** Devices remembered; the least recently heard from is dropped first. Default 10000. */
  readonly maxDevices?: number;
  /** Largest report payload in bytes. Default 512. */
  readonly maxReportBytes?: number;
  /** Called on every accepted report (logging, dashboards). */
  readonly onReport?: (s: DeviceStatus) => void;
  /**
   * The `/status` list is encoded and hashed (its ETag) once, and rebuilt
   * after a report at most this often, and only for a request of its first
   * block, so a block-wise GET sees one ETag throughout. Default 1000 ms.
   */
  readonly listRebuildMs?: number;
}

/**
 * A report is a flat map of a few scalars; these bounds leave room for a
 * small nested value (dropped by sanitize) and nothing more.
 */
const REPORT_CBOR_LIMITS: CborLimits = { maxDepth: 4, maxArrayLength: 32, maxItems: 128 };
const textDecoder = new TextDecoder();
const encoder = new TextEncoder();
const DEVICE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Device reports, newest per device. */
export class StatusTracker {
  private readonly devices = new Map<string, DeviceStatus>();
  /** The encoded `/status` list, its ETag, and when it was built (runtime ms). */
  private listDoc: { source: ByteSource; builtAt: number } | undefined;
  private listStale = true;
  /** Times the `/status` list was encoded (for tests and metrics). */
  listBuilds = 0;

  constructor(private readonly options: StatusOptions) {}

  get(device: string): DeviceStatus | undefined {
    return this.devices.get(device);
  }

  list(): DeviceStatus[] {
    return [...this.devices.values()];
  }

  /** Record a report (already parsed). */
  record(device: string, report: Record<string, unknown>, from: string): DeviceStatus {
    const old = this.devices.get(device);
    this.devices.delete(device);
    const max = this.options.maxDevices ?? 10_000;
    while (this.devices.size >= max) this.devices.delete(this.devices.keys().next().value!);
    const s: DeviceStatus = { device, report, from, at: this.options.runtime.now(), reports: (old?.reports ?? 0) + 1 };
    this.devices.set(device, s);
    this.listStale = true;
    this.options.onReport?.(s);
    return s;
  }

  /** The `/status` and `/status/<id>` resources. */
  resource(device: string | undefined): Resource {
    if (device === undefined) {
      // The list can outgrow one datagram: serve it block-wise.
      return {
        methods: new Set([Code.GET]),
        handle: (req) => serveBlock2(req.message, this.listSource(req)),
      };
    }
    return {
      methods: new Set([Code.GET, Code.POST, Code.PUT]),
      handle: (req) => this.handleDevice(device, req),
    };
  }

  /** The cached `/status` document, rebuilt when stale, old enough, and asked from its first block. */
  private listSource(req: CoapRequest): ByteSource {
    const now = this.options.runtime.now();
    const doc = this.listDoc;
    if (doc !== undefined && (!this.listStale || now - doc.builtAt < (this.options.listRebuildMs ?? 1000) || !firstBlock(req))) return doc.source;
    const source = bufferSource(encoder.encode(JSON.stringify(this.list())), { contentFormat: ContentFormat.JSON });
    this.listDoc = { source, builtAt: now };
    this.listStale = false;
    this.listBuilds++;
    return source;
  }

  private handleDevice(device: string, req: CoapRequest): ResponseSpec {
    if (!DEVICE_ID.test(device)) return errorResponse(Code.BAD_REQUEST, 'device id: 1..64 of [A-Za-z0-9._:-]');
    if (req.message.code === Code.GET) {
      const s = this.devices.get(device);
      return s ? json(s) : errorResponse(Code.NOT_FOUND, 'no report from this device');
    }
    const payload = req.message.payload;
    if (payload.length > (this.options.maxReportBytes ?? 512)) return errorResponse(Code.REQUEST_ENTITY_TOO_LARGE, 'report too large');
    const cfRaw = getOption(req.message, OptionNumber.CONTENT_FORMAT);
    const cf = cfRaw === undefined ? ContentFormat.JSON : decodeUint(cfRaw);
    let report: unknown;
    try {
      if (cf === ContentFormat.JSON) report = JSON.parse(textDecoder.decode(payload));
      else if (cf === ContentFormat.CBOR) report = decodeReportCbor(payload);
      else return errorResponse(Code.UNSUPPORTED_CONTENT_FORMAT, 'report: JSON (50) or CBOR (60)');
    } catch {
      return errorResponse(Code.BAD_REQUEST, 'report: not valid JSON/CBOR');
    }
    if (typeof report !== 'object' || report === null || Array.isArray(report)) return errorResponse(Code.BAD_REQUEST, 'report: expected a map');
    const created = !this.devices.has(device);
    this.record(device, sanitize(report as Record<string, unknown>), peerKey(req.peer));
    return { code: created ? Code.CREATED : Code.CHANGED };
  }
}

/**
 * Network CBOR goes through suit/cbor.ts's bounded scan first (depth, lengths,
 * item count, well-formedness, unique keys, valid UTF-8): cbor-x must never
 * see untrusted bytes before it. A report has no use for tags, and cbor-x
 * gives several of them meanings of its own (dates, sets, shared references,
 * records), so any tag is refused. Returns a plain object (text keys, integer
 * keys as their decimal string; other keys are dropped).
 */
function decodeReportCbor(payload: Uint8Array): unknown {
  const noTags = (_depth: number, start: number): void => {
    if (payload[start]! >> 5 === 6) throw new CoapfwError('SUIT_MALFORMED', `report: CBOR tag at byte ${start} (tags are not accepted)`);
  };
  const value = decodeCbor(payload, REPORT_CBOR_LIMITS, 'report', noTags);
  if (!(value instanceof Map)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of value) {
    if (typeof k === 'string' || typeof k === 'number' || typeof k === 'bigint') {
      Object.defineProperty(out, String(k), { value: v, enumerable: true, writable: true, configurable: true });
    }
  }
  return out;
}

/** Keep only JSON-safe scalar fields (bigints as strings, bytes as hex). */
function sanitize(r: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // defineProperty: a key such as "__proto__" is stored as data, never as the prototype.
  const set = (k: string, v: unknown): void => void Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  for (const [k, v] of Object.entries(r)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' || v === null) set(k, v);
    else if (typeof v === 'bigint') set(k, v.toString());
    else if (v instanceof Uint8Array) set(k, bytesToHex(v));
  }
  return out;
}

function json(value: unknown): ResponseSpec {
  return {
    code: Code.CONTENT,
    options: [{ number: OptionNumber.CONTENT_FORMAT, value: encodeUint(ContentFormat.JSON) }],
    payload: encoder.encode(JSON.stringify(value)),
  };
}

/** No Block2, or block 0 (a malformed one counts as a first request: serveBlock2 answers it). */
function firstBlock(req: CoapRequest): boolean {
  const raw = getOption(req.message, OptionNumber.BLOCK2);
  if (raw === undefined) return true;
  try {
    return decodeBlock(raw).num === 0;
  } catch {
    return true;
  }
}
