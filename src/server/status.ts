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
import { Block1Receiver, withBlock1 } from '../blockwise/block1.js';
import { peerKey } from '../core/transport.js';
import { decodeCborBody } from './body.js';
import { errorResponse, toResponse } from './responses.js';
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
   * Also hand each report to this (the update service records it in its
   * database when it knows the device). Its response, when it gives one,
   * is the answer (an error such as 4.03 means the report is not recorded
   * here either); undefined leaves the answer to the tracker.
   */
  readonly forward?: (device: string, report: Readonly<Record<string, unknown>>, req: CoapRequest) => Promise<ResponseSpec | undefined>;
  /**
   * The `/status` list is encoded and hashed (its ETag) once, and rebuilt
   * after a report at most this often, and only for a request of its first
   * block, so a block-wise GET sees one ETag throughout. Default 1000 ms.
   */
  readonly listRebuildMs?: number;
}

/** Options a report POST may carry beyond the server's: block-wise bodies (RFC 7959 §2.5). */
const BODY_OPTIONS: ReadonlySet<number> = new Set([OptionNumber.BLOCK1, OptionNumber.SIZE1]);
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
  /** Reports may arrive block-wise (libcoap's `coap-client -b N` adds Block1 to every POST). */
  private readonly block1: Block1Receiver;

  constructor(private readonly options: StatusOptions) {
    this.block1 = new Block1Receiver({ runtime: options.runtime, maxBodySize: options.maxReportBytes ?? 512, maxAssemblies: 64 });
  }

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
      options: BODY_OPTIONS,
      handle: withBlock1((req) => this.handleDevice(device, req), this.block1),
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

  private handleDevice(device: string, req: CoapRequest): ResponseSpec | Promise<ResponseSpec> {
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
      else if (cf === ContentFormat.CBOR) report = decodeCborBody(payload, 'report');
      else return errorResponse(Code.UNSUPPORTED_CONTENT_FORMAT, 'report: JSON (50) or CBOR (60)');
    } catch {
      return errorResponse(Code.BAD_REQUEST, 'report: not valid JSON/CBOR');
    }
    if (typeof report !== 'object' || report === null || Array.isArray(report)) return errorResponse(Code.BAD_REQUEST, 'report: expected a map');
    const clean = sanitize(report as Record<string, unknown>);
    const keep = (): ResponseSpec => {
      const created = !this.devices.has(device);
      this.record(device, clean, peerKey(req.peer));
      return { code: created ? Code.CREATED : Code.CHANGED };
    };
    const forward = this.options.forward;
    if (forward === undefined) return keep();
    return forward(device, clean, req).then(
      (answer) => {
        if (answer !== undefined && answer.code >> 5 !== 2) return answer;
        const kept = keep();
        return answer ?? kept;
      },
      (e: unknown) => toResponse(e),
    );
  }
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
