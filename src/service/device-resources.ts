/**
 * The devices' side of the update service (README "Update service"):
 *
 * - `POST /d`, `POST /d/<id>`: register, or register again after a reboot;
 * - `POST /d/<id>/r`: a status report (replays 4.09, unknown devices 4.04);
 * - `GET /d/<id>/c` (observable): the device's command; `POST /d/<id>/c`:
 *   its answer to an offer ("now", or "defer N s").
 *
 * Bodies arrive whole or block-wise (Block1, RFC 7959 §2.5); who may act for
 * which device is access.ts's rule.
 */
import type { Block1Receiver } from '../blockwise/block1.js';
import { withBlock1 } from '../blockwise/block1.js';
import { Code, OptionNumber } from '../codec/numbers.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { CoapRequest, ResponseSpec } from '../messaging/endpoint.js';
import { bodyResponse, decodeBody, responseFormat } from '../server/body.js';
import type { Resolver, Resource } from '../server/router.js';
import type { PeerIdentity } from '../server/serve.js';
import { deviceOf, registrant, type AccessPolicy } from './access.js';
import type { Targeting } from './modes.js';
import { commandView, parseAnswer, parseRegister, parseReport, registerView } from './protocol.js';
import type { ReleaseCache } from './releases.js';
import type { Store } from './store.js';
import type { Device, Release, StatusReport } from './model.js';

/** Options a body-taking resource processes beyond the server's: Block1 bodies, and Accept. */
export const BODY_OPTIONS: ReadonlySet<number> = new Set([OptionNumber.BLOCK1, OptionNumber.SIZE1, OptionNumber.ACCEPT]);
/** Accept on resources that only answer. */
export const ACCEPT_ONLY: ReadonlySet<number> = new Set([OptionNumber.ACCEPT]);

/** Something the service did, for logs and dashboards. */
export type ServiceEvent =
  | { readonly type: 'registered'; readonly device: Device; readonly secure: boolean }
  | { readonly type: 'report'; readonly deviceId: string; readonly report: StatusReport }
  | { readonly type: 'answer'; readonly deviceId: string; readonly commandId: number; readonly deferS: number }
  | { readonly type: 'published'; readonly release: Release }
  | { readonly type: 'error'; readonly error: unknown; readonly during: string };

/** What the device resources work with. */
export interface DeviceContext {
  readonly store: Store;
  readonly releases: ReleaseCache;
  readonly policy: AccessPolicy;
  readonly targeting: Targeting;
  readonly identify: (req: CoapRequest) => PeerIdentity;
  /** Seconds between polls when Observe is lost: the same for every device of a class. */
  readonly pollS: number;
  /** Small bodies (registrations, reports, answers): assembled in memory, bounded. */
  readonly bodies: Block1Receiver;
  /** Make a resource observable under a key. */
  readonly observe: (key: string, resource: Resource) => Resource;
  readonly onEvent?: (e: ServiceEvent) => void;
}

/** `/d`, `/d/<id>`, `/d/<id>/r`, `/d/<id>/c`. */
export function deviceResolver(ctx: DeviceContext): Resolver {
  return (path) => {
    if (path[0] !== 'd' || path.length > 3) return undefined;
    if (path.length <= 2) return post(ctx, (req) => register(ctx, req, path[1]));
    const id = path[1]!;
    if (path[2] === 'r') return post(ctx, (req) => report(ctx, req, id));
    if (path[2] === 'c') return ctx.observe(commandKey(id), commandResource(ctx, id));
    return undefined;
  };
}

/** The Observe key of a device's command resource. */
export function commandKey(deviceId: string): string {
  return `d/${deviceId}/c`;
}

function post(ctx: DeviceContext, handle: (req: CoapRequest) => Promise<ResponseSpec>): Resource {
  return { methods: new Set([Code.POST]), options: BODY_OPTIONS, handle: withBlock1(handle, ctx.bodies) };
}

async function register(ctx: DeviceContext, req: CoapRequest, pathId: string | undefined): Promise<ResponseSpec> {
  const format = responseFormat(req.message, 'register');
  const caller = ctx.identify(req);
  const who = await registrant(ctx.store, caller, ctx.policy, pathId);
  const body = parseRegister(decodeBody(req.message, 'register').map);
  const device = await ctx.store.registerDevice({ id: who.id, ...body, ...(who.identity === undefined ? {} : { identity: who.identity }) });
  ctx.onEvent?.({ type: 'registered', device, secure: caller.secure });
  try {
    await ctx.targeting.registered(device);
  } catch (e) {
    // The registration stands; the command follows at the next registration or release.
    ctx.onEvent?.({ type: 'error', error: e, during: `targeting device ${device.id}` });
  }
  return bodyResponse(Code.CHANGED, registerView(device, ctx.pollS), format);
}

async function report(ctx: DeviceContext, req: CoapRequest, pathId: string): Promise<ResponseSpec> {
  const format = responseFormat(req.message, 'report');
  const device = await deviceOf(ctx.store, ctx.identify(req), ctx.policy, pathId, 'report');
  const r = parseReport(decodeBody(req.message, 'report').map);
  await ctx.store.recordReport(device.id, r);
  ctx.onEvent?.({ type: 'report', deviceId: device.id, report: r });
  return bodyResponse(Code.CHANGED, { rseq: r.reportSeq }, format);
}

/** `GET` (+Observe) and `POST /d/<id>/c`. */
export function commandResource(ctx: DeviceContext, pathId: string): Resource {
  const answerPost = withBlock1((req) => answer(ctx, req, pathId), ctx.bodies);
  return {
    methods: new Set([Code.GET, Code.POST]),
    options: BODY_OPTIONS,
    handle: (req) => (req.message.code === Code.GET ? showCommand(ctx, req, pathId) : answerPost(req)),
  };
}

async function showCommand(ctx: DeviceContext, req: CoapRequest, pathId: string): Promise<ResponseSpec> {
  const format = responseFormat(req.message, 'command');
  const device = await deviceOf(ctx.store, ctx.identify(req), ctx.policy, pathId, 'command');
  const command = await ctx.store.openCommand(device.id);
  const served = command === undefined ? undefined : await ctx.releases.get(command.classId, command.sequence);
  return bodyResponse(Code.CONTENT, commandView(command, served?.release), format);
}

async function answer(ctx: DeviceContext, req: CoapRequest, pathId: string): Promise<ResponseSpec> {
  const format = responseFormat(req.message, 'answer');
  const device = await deviceOf(ctx.store, ctx.identify(req), ctx.policy, pathId, 'answer');
  const a = parseAnswer(decodeBody(req.message, 'answer').map);
  const command = await ctx.store.getCommand(a.id);
  // Another device's command answers the same as a finished one: nothing to learn about others.
  if (command === undefined || command.deviceId !== device.id) throw new CoapfwError('CONFLICT', `answer: command ${a.id} is not open for device ${device.id}`);
  let updated = await ctx.store.stepCommand(a.id, { type: 'answer', deferS: a.deferS });
  if (a.deferS === 0) {
    // "now": triggered at once rather than at the next scheduler tick. CONFLICT: a tick got there first.
    try {
      updated = await ctx.store.stepCommand(a.id, { type: 'trigger' });
    } catch (e) {
      if (!isCoapfwError(e, 'CONFLICT')) throw e;
      updated = (await ctx.store.getCommand(a.id)) ?? updated;
    }
  }
  ctx.onEvent?.({ type: 'answer', deviceId: device.id, commandId: a.id, deferS: a.deferS });
  const served = await ctx.releases.get(updated.classId, updated.sequence);
  return bodyResponse(Code.CHANGED, commandView(updated, served?.release), format);
}
