/**
 * The device agent's options and events, and their validation at the public
 * boundary (once, with labelled messages).
 */
import type { CoapMessage } from '../codec/message.js';
import { parseCoapUri } from '../codec/uri.js';
import type { Requester } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import type { Peer } from '../core/transport.js';
import { CoapfwError } from '../errors.js';
import type { FlashBackend } from '../flash/backend.js';
import type { FlashLayout } from '../flash/layout.js';
import type { CoapEndpoint } from '../messaging/endpoint.js';
import type { RetryPolicy } from '../messaging/retry.js';
import type { ResponseStream, StreamListener } from '../messaging/response-stream.js';
import type { AgentStateName, UpdateOutcome, UpdateTarget } from './agent-machine.js';
import type { ReportOutcome } from './agent-reports.js';
import { AGENT_MODES, type AgentCommand, type AgentMode, type CommandUrgency, type OfferAnswer } from './agent-wire.js';
import type { PowerOnOptions, PowerOnOutcome } from './device.js';
import type { UpdateStatus } from './report.js';
import type { UpdateEvent, UpdateOptions } from './states.js';

/** What an offer tells the device's policy. */
export interface Offer {
  readonly id: number;
  readonly seq: number;
  readonly urgency: CommandUrgency | undefined;
  /** Seconds the device would be unavailable. */
  readonly downtime: number | undefined;
}

/** How the agent reaches its server: a requester and Observe streams to the same peer. */
export interface AgentLink {
  readonly request: Requester;
  readonly openStream: (listener: StreamListener) => ResponseStream;
  readonly runtime: Runtime;
}

/** The link of a client opened with `openClient` (coapfw/client): its requester and its endpoint's streams. */
export function agentLink(client: { readonly request: (spec: Parameters<Requester>[0], o?: Parameters<Requester>[1]) => Promise<CoapMessage>; readonly endpoint: CoapEndpoint; readonly peer: Peer; readonly runtime: Runtime }): AgentLink {
  return { request: (spec, o) => client.request(spec, o), openStream: (l) => client.endpoint.openStream(client.peer, l), runtime: client.runtime };
}

/** Options of `DeviceAgent`; every limit has a safe default. */
export interface DeviceAgentOptions {
  readonly flash: FlashBackend;
  readonly layout: FlashLayout;
  /** The update server, `coap://host:port` or `coaps://...`: the paths it names are resolved against it. */
  readonly server: string;
  readonly link: AgentLink;
  /**
   * Keys manifests must be signed by, for a layout without a trust area.
   * With one the device's trust store decides (device/trust-device.ts) and
   * `trust` must not be given, as for runUpdate.
   */
  readonly trust?: UpdateOptions['trust'];
  /** Vendor and class UUIDs (16 bytes each). */
  readonly vendorId: Uint8Array;
  readonly classId: Uint8Array;
  readonly mode: AgentMode;
  /** The id to register under; absent: `POST /d`, the server names the device by its credentials (coaps). */
  readonly deviceId?: string;
  readonly group?: string;
  /** Negotiated mode: the answer to an offer. Default: now. */
  readonly answerOffer?: (offer: Offer) => OfferAnswer | Promise<OfferAnswer>;
  /** Client mode: whether the device may update now; asked before each update. Default: always. */
  readonly isIdle?: () => boolean | Promise<boolean>;
  /** The new image's self-test at the reboot after an install. Default: passes. */
  readonly selfTest?: PowerOnOptions['selfTest'];
  /** A downloading report at most every this many percent of the image. Default 10. */
  readonly progressStepPercent?: number;
  /** Back-off of registrations and reports after a failure. Default 1 s base, 60 s max, full jitter. */
  readonly backoff?: RetryPolicy;
  /** Tuning of the updater (block size, retries, limits). */
  readonly update?: Pick<UpdateOptions, 'szx' | 'qblock2' | 'maxAhead' | 'blockRetry' | 'retry' | 'maxRestarts' | 'maxEnvelopeSize' | 'maxInstallAttempts' | 'responseTimeoutMs'>;
  /** Reports waiting at most (progress is coalesced first). Default 64. */
  readonly maxQueuedReports?: number;
  readonly onEvent?: (e: AgentEvent) => void;
}

/** What the agent does, for logs and tests. */
export type AgentEvent =
  | { readonly type: 'state'; readonly state: AgentStateName }
  | { readonly type: 'powered'; readonly outcome: PowerOnOutcome; readonly installed: number; readonly running: string }
  | { readonly type: 'registered'; readonly id: string; readonly rseq: number; readonly poll: number }
  | { readonly type: 'register-failed'; readonly error: string }
  | { readonly type: 'observing'; readonly path: string }
  | { readonly type: 'observe-lost'; readonly reason: string }
  | { readonly type: 'command'; readonly command: AgentCommand }
  | { readonly type: 'manifest'; readonly seq: number; readonly manifest: string }
  /** A notification that could not be used (undecodable command, an envelope that does not verify). */
  | { readonly type: 'ignored'; readonly path: string; readonly error: string }
  | { readonly type: 'answered'; readonly commandId: number; readonly answer: OfferAnswer; readonly code: number | undefined }
  /** Told before it starts: the device will be unavailable for about `seconds`. */
  | { readonly type: 'downtime'; readonly seq: number; readonly seconds: number }
  | { readonly type: 'update-start'; readonly target: UpdateTarget }
  | { readonly type: 'update-end'; readonly target: UpdateTarget; readonly outcome: UpdateOutcome; readonly status: UpdateStatus | undefined }
  | { readonly type: 'update'; readonly event: UpdateEvent }
  | { readonly type: 'report'; readonly outcome: ReportOutcome }
  | { readonly type: 'waiting'; readonly ms: number }
  | { readonly type: 'stopped'; readonly error: string | undefined };

const DEVICE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** Check `o` once; INVALID_ARGUMENT (or BAD_URI) with a labelled message. */
export function checkAgentOptions(o: DeviceAgentOptions): void {
  const bad = (m: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', `device agent: ${m}`);
  if (!o || !o.flash || !o.layout || !o.link || typeof o.link.request !== 'function' || typeof o.link.openStream !== 'function' || !o.link.runtime) {
    throw bad('flash, layout and link (request, openStream, runtime) are required');
  }
  parseCoapUri(o.server);
  if (o.layout.trust === undefined && o.trust === undefined) throw bad('give `trust` (a TrustPolicy), or a layout with a trust area');
  if (o.layout.trust !== undefined && o.trust !== undefined) throw bad('the layout has a trust area: trust comes from the trust store, pass no `trust`');
  if (!AGENT_MODES.includes(o.mode)) throw bad(`mode must be one of ${AGENT_MODES.join(', ')}, got ${JSON.stringify(o.mode)}`);
  for (const [name, id] of [['vendorId', o.vendorId], ['classId', o.classId]] as const) {
    if (!(id instanceof Uint8Array) || id.length !== 16) throw bad(`${name} must be 16 bytes`);
  }
  if (o.deviceId !== undefined && !DEVICE_ID.test(o.deviceId)) throw bad(`deviceId must be 1..64 of [A-Za-z0-9._:-], got ${JSON.stringify(o.deviceId)}`);
  if (o.group !== undefined && (typeof o.group !== 'string' || o.group.length < 1 || o.group.length > 64)) throw bad('group must be text of 1..64 characters');
  const step = o.progressStepPercent;
  if (step !== undefined && (!Number.isInteger(step) || step < 1 || step > 100)) throw bad(`progressStepPercent must be an integer 1..100, got ${step}`);
  const q = o.maxQueuedReports;
  if (q !== undefined && (!Number.isInteger(q) || q < 2 || q > 4096)) throw bad(`maxQueuedReports must be an integer 2..4096, got ${q}`);
}
