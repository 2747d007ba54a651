/**
 * The device side of the update service's protocol, as the gateway offers it
 * (SERVICE-PROTOCOL v1: `/d`, `/d/<id>`, `/d/<id>/r`, `/d/<id>/c`, and the
 * old `/status/<id>`), with store-and-forward towards the upstream.
 *
 * Identity: over coaps the device is its PSK identity at the gateway; `/d`
 * names the caller, `/d/<id>` is allowed only for that identity (else 4.03).
 * Over plain CoAP `/d/<id>` is taken as it is only with `openRegistration`
 * (a lab). Upstream, the gateway speaks for the device under its own
 * identity (the `gateway` role), always at `/d/<id>`.
 *
 * - A registration goes upstream at once when the uplink is up and nothing
 *   of that device waits in the queue (it must not overtake its reports); the
 *   upstream's answer is relayed and remembered. Otherwise it is queued, and
 *   the device gets the last answer the upstream gave it, with `rseq` raised
 *   to the highest report the gateway holds (5.03 when it never had one).
 * - A report is queued durably and answered 2.04; one whose `rseq` is not
 *   above the highest taken is 4.09 (the device repeated it: its answer was
 *   lost). The forwarder sends it on in order.
 * - The command resource and answers to offers are relayed live (a relative
 *   `defer` must not age in a queue); 5.0x when the uplink is down.
 */
import { equalBytes } from '@noble/curves/utils.js';
import { Block1Receiver, withBlock1 } from '../blockwise/block1.js';
import type { CoapMessage } from '../codec/message.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { getOption, stringOption, uintOption } from '../codec/options.js';
import type { Runtime } from '../core/runtime.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import { errorResponse, toResponse } from '../server/responses.js';
import type { Resolver, Resource } from '../server/router.js';
import { answerFormat, contentFormatOf, decodeBody, encodeBody, uintMember } from './body.js';
import type { QueuedReportLike, ReportForwarder, UpstreamSend } from './forwarder.js';
import type { QueuedReport, ReportItem, ReportQueue } from './report-queue.js';
import { relayed } from './relay.js';
import { isUplinkFailure, type Uplink } from './upstream.js';

/** Options of {@link DeviceRelay}. */
export interface DeviceRelayOptions {
  readonly queue: ReportQueue;
  readonly forwarder: ReportForwarder;
  /** One request to the upstream (the path is in its options). */
  readonly send: UpstreamSend;
  readonly uplink: Uplink;
  /** The PSK identity of a request that came over coaps, undefined over plain CoAP. */
  readonly identityOf: (req: CoapRequest) => string | undefined;
  /** Accept `/d/<id>` over plain CoAP (a lab: anyone on the link can speak for any device). */
  readonly openRegistration: boolean;
  readonly runtime: Runtime;
  /** Relay a command request (`/d/<id>/c`) live: the request, the upstream path. */
  readonly relayLive: (req: CoapMessage, path: readonly string[]) => Promise<ResponseSpec>;
  /** Relays a GET with Observe on the command resource (the gateway's Observe relay); without it such a GET is relayed live, unobserved. */
  readonly observe?: (req: CoapRequest, path: readonly string[]) => Promise<ResponseSpec | undefined> | undefined;
  /** Largest registration or report body. Default 1024 bytes. */
  readonly maxBodyBytes?: number;
  /** Devices whose last registration and answer are kept. Default 10,000. */
  readonly maxDevices?: number;
  /** How long a registration may wait for the upstream before it is queued instead. Default 5,000 ms. */
  readonly syncTimeoutMs?: number;
  readonly onEvent?: (e: DeviceEvent) => void;
}

/** What happened to a device's message. */
export type DeviceEvent =
  | { readonly type: 'registration-relayed'; readonly device: string; readonly code: number }
  | { readonly type: 'queued'; readonly device: string; readonly kind: ReportItem['kind']; readonly seq: number; readonly rseq?: number }
  | { readonly type: 'refused'; readonly device: string | undefined; readonly code: number; readonly why: string };

interface Known {
  registration: QueuedReportLike;
  answer: Record<string, unknown> | undefined;
}

const POST: ReadonlySet<number> = new Set([Code.POST]);
const DEVICE_ID = /^[^\s/\x00-\x1f\x7f]{1,128}$/u;

/** The `/d` and `/status` resources of the gateway. */
export class DeviceRelay {
  private readonly known = new Map<string, Known>();
  private readonly block1: Block1Receiver;

  constructor(private readonly options: DeviceRelayOptions) {
    this.block1 = new Block1Receiver({ runtime: options.runtime, maxBodySize: options.maxBodyBytes ?? 1024 });
  }

  /** The resolver for `/d...` and `/status/<id>`. */
  readonly resolve: Resolver = (path) => {
    if (path[0] === 'd') {
      if (path.length === 1) return this.resource(POST, (req) => this.register(req, undefined));
      if (path.length === 2) return this.resource(POST, (req) => this.register(req, path[1]!));
      if (path.length === 3 && path[2] === 'r') return this.resource(POST, (req) => this.report(req, path[1]!));
      if (path.length === 3 && path[2] === 'c') return this.commandResource(path[1]!);
      return undefined;
    }
    if (path[0] === 'status' && path.length === 2) return this.resource(POST, (req) => this.legacy(req, path[1]!));
    return undefined;
  };

  /** The registration to send again for `device` (the forwarder's 4.04 recovery). */
  registrationOf(device: string): QueuedReportLike | undefined {
    return this.known.get(device)?.registration;
  }

  /** Keep the upstream's answer to a forwarded registration. */
  noteAnswer(item: QueuedReport, res: CoapMessage): void {
    if (item.kind !== 'register' || res.code >> 5 !== 2) return;
    this.remember(item.device, item, res);
  }

  private resource(methods: ReadonlySet<number>, handle: (req: CoapRequest) => Promise<ResponseSpec>): Resource {
    return { methods, handle: withBlock1((req) => handle(req).catch(toResponse), this.block1) };
  }

  /** The device id a request may speak for, or the refusal. */
  private deviceId(req: CoapRequest, named: string | undefined): string {
    const identity = this.options.identityOf(req);
    if (identity !== undefined) {
      if (named !== undefined && named !== identity) throw refusal(Code.FORBIDDEN, `identity "${identity}" may not speak for device "${named}"`);
      return identity;
    }
    if (named === undefined) throw refusal(Code.FORBIDDEN, 'POST /d names the caller by its coaps identity; over plain CoAP use /d/<id>');
    if (!this.options.openRegistration) throw refusal(Code.FORBIDDEN, 'devices must use coaps here (plain CoAP registration is off)');
    if (!DEVICE_ID.test(named)) throw refusal(Code.BAD_REQUEST, 'device id: 1..128 characters, no white space or control characters');
    return named;
  }

  private async register(req: CoapRequest, named: string | undefined): Promise<ResponseSpec> {
    const device = this.checked(req, named);
    const msg = req.message;
    decodeBody(msg.payload, contentFormatOf(msg));
    const item: ReportItem = { kind: 'register', device, path: ['d', device], contentFormat: contentFormatOf(msg), body: msg.payload };
    const { queue } = this.options;
    if (this.options.uplink.up && !queue.hasPendingFor(device)) {
      try {
        const res = await this.sendNow(item);
        if (res.code >> 5 !== 5) {
          if (res.code >> 5 === 2) this.remember(device, item, res);
          this.options.onEvent?.({ type: 'registration-relayed', device, code: res.code });
          return relayed(res);
        }
      } catch (e) {
        if (!isUplinkFailure(e)) throw e;
      }
    }
    const pendingSame = queue.items().some((i) => i.kind === 'register' && i.device === device && equalBytes(i.body, item.body));
    if (!pendingSame) await this.enqueue(item);
    return this.answerFromMemory(device, msg);
  }

  private async report(req: CoapRequest, named: string): Promise<ResponseSpec> {
    const device = this.checked(req, named);
    const msg = req.message;
    const body = decodeBody(msg.payload, contentFormatOf(msg));
    const rseq = uintMember(body, 'rseq');
    if (rseq === undefined) throw new CoapfwError('INVALID_ARGUMENT', 'report: "rseq" is required');
    try {
      await this.enqueue({ kind: 'report', device, path: ['d', device, 'r'], contentFormat: contentFormatOf(msg), body: msg.payload, rseq });
    } catch (e) {
      if (isCoapfwError(e, 'REPORT_REPLAY')) return errorResponse(Code.CONFLICT, e.message);
      throw e;
    }
    return { code: Code.CHANGED };
  }

  private async legacy(req: CoapRequest, device: string): Promise<ResponseSpec> {
    if (!DEVICE_ID.test(device)) throw refusal(Code.BAD_REQUEST, 'device id: 1..128 characters, no white space or control characters');
    const msg = req.message;
    await this.enqueue({ kind: 'status', device, path: ['status', device], contentFormat: contentFormatOf(msg), body: msg.payload });
    return { code: Code.CHANGED };
  }

  /** `/d/<id>/c`: relayed live, a GET with Observe through the Observe relay (a GET has no body: no Block1 there). */
  private commandResource(named: string): Resource {
    const live = this.resource(new Set([Code.GET, Code.POST]), (req) => this.command(req, named));
    const observe = this.options.observe;
    return {
      methods: live.methods,
      handle: (req) => {
        if (observe === undefined || req.message.code !== Code.GET || getOption(req.message, OptionNumber.OBSERVE) === undefined) return live.handle(req);
        let device: string;
        try {
          device = this.checked(req, named);
        } catch (e) {
          return toResponse(e);
        }
        return observe(req, ['d', device, 'c']) ?? live.handle(req);
      },
    };
  }

  private async command(req: CoapRequest, named: string): Promise<ResponseSpec> {
    const device = this.checked(req, named);
    return this.options.relayLive(req.message, ['d', device, 'c']);
  }

  private checked(req: CoapRequest, named: string | undefined): string {
    try {
      return this.deviceId(req, named);
    } catch (e) {
      if (e instanceof CoapfwError) this.options.onEvent?.({ type: 'refused', device: named, code: e.responseCode ?? Code.FORBIDDEN, why: e.message });
      throw e;
    }
  }

  private async enqueue(item: ReportItem): Promise<void> {
    const queued = await this.options.queue.enqueue(item);
    this.options.onEvent?.({ type: 'queued', device: item.device, kind: item.kind, seq: queued.seq, ...(item.rseq !== undefined ? { rseq: item.rseq } : {}) });
    this.options.forwarder.kick();
  }

  private sendNow(item: ReportItem): Promise<CoapMessage> {
    const timeout = this.options.syncTimeoutMs ?? 5000;
    const options = item.path.map((s) => stringOption(OptionNumber.URI_PATH, s));
    if (item.contentFormat !== undefined) options.push(uintOption(OptionNumber.CONTENT_FORMAT, item.contentFormat));
    return withTimeout(this.options.runtime, this.options.send({ code: Code.POST, options, payload: item.body, confirmable: true }), timeout);
  }

  /** The last upstream answer for `device`, `rseq` raised to what the queue holds; 5.03 if there is none. */
  private answerFromMemory(device: string, msg: CoapMessage): ResponseSpec {
    const answer = this.known.get(device)?.answer;
    if (answer === undefined) {
      return { ...errorResponse(Code.SERVICE_UNAVAILABLE, 'uplink down: registration queued; ask again later'), options: [uintOption(OptionNumber.MAX_AGE, 30)] };
    }
    const held = this.options.queue.highestRseq(device);
    const rseq = Math.max(typeof answer.rseq === 'number' ? answer.rseq : 0, held ?? 0);
    const format = answerFormat(msg);
    return { code: Code.CHANGED, options: [uintOption(OptionNumber.CONTENT_FORMAT, format)], payload: encodeBody({ ...answer, rseq }, format) };
  }

  private remember(device: string, item: QueuedReportLike, res: CoapMessage): void {
    let answer: Record<string, unknown> | undefined;
    try {
      answer = res.payload.length > 0 ? decodeBody(res.payload, contentFormatOf(res)) : undefined;
    } catch {
      answer = undefined; // an answer we cannot read is relayed as it is, not kept
    }
    this.known.delete(device);
    this.known.set(device, { registration: { path: item.path, contentFormat: item.contentFormat, body: item.body }, answer });
    while (this.known.size > (this.options.maxDevices ?? 10_000)) this.known.delete(this.known.keys().next().value!);
  }
}

function refusal(code: number, why: string): CoapfwError {
  return new CoapfwError(code === Code.FORBIDDEN ? 'FORBIDDEN' : 'INVALID_ARGUMENT', why, { responseCode: code });
}

/** `p`, or TIMEOUT after `ms` (the request itself goes on and its answer is dropped). */
function withTimeout<T>(runtime: Runtime, p: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = runtime.setTimer(ms, () => reject(new CoapfwError('TIMEOUT', `upstream: no answer within ${ms} ms`)));
    p.then(
      (v) => (runtime.clearTimer(t), resolve(v)),
      (e: unknown) => (runtime.clearTimer(t), reject(e)),
    );
  });
}
