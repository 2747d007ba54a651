/**
 * An in-memory double of the update service's device-facing side (the
 * protocol of the README's "Update service" section), for the agent's unit
 * tests on a fake clock: registration, reports with replay detection,
 * per-device command resources and class manifests, both observable, the
 * answer to an offer (a deferral becomes `op: update` on the double's
 * clock), and content-addressed blobs. It can "restart" (forgetting every
 * Observe registration, as a new server process does) and go silent.
 * The fleet and CLI tests use the real server; this only stands in where
 * a unit test wants a fake clock.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { Decoder, Encoder } from 'cbor-x';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { bufferSource } from '../../src/blockwise/source.js';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { encodeUint } from '../../src/codec/options.js';
import type { Peer } from '../../src/core/transport.js';
import type { AgentLink } from '../../src/device/agent-options.js';
import { CoapEndpoint, type ResponseSpec } from '../../src/messaging/endpoint.js';
import { ObserveRegistry } from '../../src/server/observe.js';
import { routeRequests, type Resource } from '../../src/server/router.js';
import type { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';
import { CLASS, KEY, VENDOR, hex } from './update-helpers.js';
import { createEnvelope } from '../../src/suit/create.js';

export const SERVICE: Peer = { address: '10.0.0.1', port: 5683 };
export const SERVICE_URI = 'coap://10.0.0.1';

const enc = new Encoder({ mapsAsObjects: true, useRecords: false, tagUint8Array: false });
const dec = new Decoder({ mapsAsObjects: true, useRecords: false });
type Body = Record<string, unknown>;

/** One line of what the double saw, stamped with its (fake) clock. */
export interface Seen {
  readonly at: number;
  readonly device: string;
  readonly body: Body;
  readonly code: number;
}

interface DeviceRow {
  registration: Body;
  rseq: number;
  state: string;
  installed: number;
}

function cbor(code: number, body: Body): ResponseSpec {
  return { code, options: [{ number: OptionNumber.CONTENT_FORMAT, value: encodeUint(ContentFormat.CBOR) }], payload: enc.encode(body) };
}

/** The service double; see the module comment. */
export class ServiceDouble {
  readonly net = new MemNetwork();
  readonly devices = new Map<string, DeviceRow>();
  readonly registrations: Seen[] = [];
  readonly reports: Seen[] = [];
  readonly answers: Seen[] = [];
  readonly blobs = new Map<string, Uint8Array>();
  readonly commands = new Map<string, Body>();
  private latest: Uint8Array | undefined;
  private endpoint!: CoapEndpoint;
  private observe!: ObserveRegistry;
  private nextPort = 30000;
  private nextCommand = 1;
  /** Seconds between re-registrations the double tells devices. */
  poll = 5;
  /** The rseq a new device starts from (a device that reported before its flash was wiped). */
  startRseq = 0;
  /** Called before a report is processed (a test may forget the device there). */
  beforeReport: (device: string, body: Body) => void = () => {};
  /** Extra keys for the registration answer; `null` leaves a key out. */
  answerExtra: Body = {};

  constructor(private readonly rt: FakeRuntime) {
    this.listen();
  }

  private listen(): void {
    this.observe = new ObserveRegistry({ runtime: this.rt });
    this.endpoint = new CoapEndpoint(this.net.endpoint(SERVICE.address, SERVICE.port), { runtime: this.rt, amplification: false });
    this.endpoint.handle(routeRequests((path) => this.resolve(path)));
  }

  /** A new server process on the same address: the registry stays, Observe registrations are gone. */
  async restart(): Promise<void> {
    this.observe.close();
    await this.endpoint.close();
    this.listen();
  }

  /** Drop every datagram to or from the server (it is down or cut off) until `silent = false`. */
  set silent(on: boolean) {
    this.net.filter = on ? (from, to) => !(to.address === SERVICE.address || from.address === SERVICE.address) : () => true;
  }

  /** A client endpoint on the network (a device, new port each time: a reboot). */
  link(): AgentLink & { close(): Promise<void> } {
    const ep = new CoapEndpoint(this.net.endpoint('10.0.0.2', this.nextPort++), { runtime: this.rt, params: { ackTimeoutMs: 1000 } });
    return { request: (spec, o) => ep.request(SERVICE, spec, o), openStream: (l) => ep.openStream(SERVICE, l), runtime: this.rt, close: () => ep.close() };
  }

  /** Store `img` and its signed envelope (sequence `seq`) as a release; returns the envelope's path. */
  release(img: Uint8Array, seq: number, key = KEY): string {
    this.blobs.set(hex(sha256(img)), img);
    const env = createEnvelope({ sequence: seq, vendorId: VENDOR, classId: CLASS, uri: `/fw/sha256/${hex(sha256(img))}`, digest: sha256(img), size: img.length }, [key]);
    this.blobs.set(hex(sha256(env)), env);
    this.latest = env;
    this.observe.changed('m', this.manifestResource());
    return `/fw/sha256/${hex(sha256(env))}`;
  }

  /** Set a device's command (op update or offer for `seq` of envelope `manifest`); returns its id. */
  command(device: string, op: 'update' | 'offer' | 'none', seq = 0, manifest = '', extra: Body = {}): number {
    const id = this.nextCommand++;
    this.setCommand(device, op === 'none' ? { op } : { op, id, seq, manifest, urgency: 'normal', ...extra });
    return id;
  }

  private setCommand(device: string, body: Body): void {
    this.commands.set(device, body);
    this.observe.changed(`c:${device}`, this.commandResource(device));
  }

  private resolve(path: readonly string[]): Resource | undefined {
    const [a, b, c, ...rest] = path;
    if (rest.length > 0) return undefined;
    if (a === 'd' && c === undefined) return this.post((body, at) => this.register(b ?? 'anonymous', body, at));
    if (a === 'd' && c === 'r') return this.post((body, at) => this.report(b!, body, at));
    if (a === 'd' && c === 'c') {
      const get = this.observe.wrap(`c:${b}`, this.commandResource(b!));
      const answer = this.post((body, at) => this.answer(b!, body, at));
      return { methods: new Set([Code.GET, Code.POST]), handle: (req) => (req.message.code === Code.GET ? get.handle(req) : answer.handle(req)) };
    }
    if (a === 'm' && b === hex(CLASS) && c === undefined) return this.observe.wrap('m', this.manifestResource());
    if (a === 'fw' && b === 'sha256' && c !== undefined && this.blobs.has(c)) {
      const src = bufferSource(this.blobs.get(c)!);
      return { methods: new Set([Code.GET]), handle: (req) => serveBlock2(req.message, src, { maxSzx: 6 }) };
    }
    return undefined;
  }

  private post(fn: (body: Body, at: number) => ResponseSpec): Resource {
    return { methods: new Set([Code.POST]), handle: (req) => fn(dec.decode(req.message.payload) as Body, this.rt.now()) };
  }

  private commandResource(device: string): Resource {
    return { methods: new Set([Code.GET]), handle: () => (this.devices.has(device) ? cbor(Code.CONTENT, this.commands.get(device) ?? { op: 'none' }) : { code: Code.NOT_FOUND }) };
  }

  private manifestResource(): Resource {
    return { methods: new Set([Code.GET]), handle: (req) => (this.latest === undefined ? { code: Code.NOT_FOUND } : serveBlock2(req.message, bufferSource(this.latest), { maxSzx: 6 })) };
  }

  private register(id: string, body: Body, at: number): ResponseSpec {
    const row = this.devices.get(id) ?? { registration: body, rseq: this.startRseq, state: 'registered', installed: 0 };
    row.registration = body;
    row.installed = Number(body.seq);
    this.devices.set(id, row);
    this.registrations.push({ at, device: id, body, code: Code.CHANGED });
    const answer: Body = { id, rseq: row.rseq, cmd: `/d/${id}/c`, manifest: `/m/${hex(CLASS)}`, poll: this.poll };
    for (const [k, v] of Object.entries(this.answerExtra)) if (v === null) delete answer[k];
    else answer[k] = v;
    return cbor(Code.CHANGED, answer);
  }

  private report(id: string, body: Body, at: number): ResponseSpec {
    this.beforeReport(id, body);
    const row = this.devices.get(id);
    const code = row === undefined ? Code.NOT_FOUND : Number(body.rseq) <= row.rseq ? Code.CONFLICT : Code.CHANGED;
    this.reports.push({ at, device: id, body, code });
    if (code !== Code.CHANGED) return { code };
    row!.rseq = Number(body.rseq);
    row!.state = String(body.state);
    const cmd = this.commands.get(id);
    // As the store does: a confirmed report closes the command of that (or an older) release, failed/reverted fail it.
    if (cmd !== undefined && cmd.op !== 'none' && ((body.state === 'confirmed' && Number(cmd.seq) <= Number(body.seq)) || body.state === 'failed' || body.state === 'reverted')) {
      this.setCommand(id, { op: 'none' });
    }
    return { code };
  }

  private answer(id: string, body: Body, at: number): ResponseSpec {
    const cmd = this.commands.get(id);
    this.answers.push({ at, device: id, body, code: Code.CHANGED });
    if (cmd === undefined || cmd.op !== 'offer' || cmd.id !== body.id) return { code: Code.CONFLICT };
    const trigger = (): void => this.setCommand(id, { ...cmd, op: 'update', answered: undefined });
    if (body.answer === 'now') trigger();
    else {
      this.commands.set(id, { ...cmd, answered: 'defer' });
      this.rt.setTimer(Number(body.defer) * 1000, trigger);
    }
    return { code: Code.CHANGED };
  }

  /** Observe registrations the current server process holds. */
  get observers(): number {
    return this.observe.size;
  }

  close(): Promise<void> {
    this.observe.close();
    return this.endpoint.close();
  }
}
