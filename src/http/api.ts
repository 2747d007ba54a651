/**
 * The JSON API under `/api/` that the fleet page and scripts use. Reads are
 * open (bind loopback, the default, or put a proxy in front); every action
 * (starting, pausing, resuming, aborting a rollout) needs the operator token
 * (`Authorization: Bearer ...`). Lists are pages: `?limit=` (at most the
 * store's page size) and a cursor (`after` for devices and targets,
 * `before` for history), returned as `next` when there may be more.
 *
 * | route | what |
 * |---|---|
 * | `GET /api/summary` | devices (total and by state), releases, active and paused rollouts |
 * | `GET /api/devices?state=&class=&group=&after=&limit=` | a page of devices |
 * | `GET /api/devices/:id` | one device, its open command, its rollouts, its newest history |
 * | `GET /api/devices/:id/history?before=&limit=` | a page of its history, newest first |
 * | `GET /api/releases?class=&limit=` | releases, newest first |
 * | `GET /api/rollouts?state=&class=&limit=` | rollouts with progress |
 * | `GET /api/rollouts/:id` | one rollout: waves, counts, timeliness, confirmation curve |
 * | `GET /api/rollouts/:id/targets?wave=&state=&after=&limit=` | its devices |
 * | `POST /api/rollouts` | start one: `{ classId, sequence, group?, waves? }` (token) |
 * | `POST /api/rollouts/:id/pause`, `/resume`, `/abort` | operator actions (token) |
 * | `GET /api/events` | server-sent events: `change` with what changed |
 */
import type { IncomingMessage } from 'node:http';
import { CoapfwError } from '../errors.js';
import { ROLLOUT_STATES, TARGET_STATES, type RolloutState, type TargetState, type WaveSpec } from '../service/fleet.js';
import { REPORT_STATES, type DeviceState } from '../service/model.js';
import type { RolloutEngine } from '../service/rollout-engine.js';
import type { Store } from '../service/store.js';
import { readJson, Routes, type HttpContext } from './routes.js';
import { authorized } from './token.js';

/** What the API serves from. */
export interface ApiContext {
  readonly store: Store;
  readonly engine: RolloutEngine;
  readonly token: string;
  /** Largest request body. */
  readonly maxBodyBytes: number;
}

const int = (q: URLSearchParams, name: string, min = 0): number | undefined => {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!/^\d{1,15}$/.test(v) || Number(v) < min) throw new CoapfwError('INVALID_ARGUMENT', `${name}: expected an integer >= ${min}, got '${v.slice(0, 20)}'`);
  return Number(v);
};
const text = (q: URLSearchParams, name: string): string | undefined => q.get(name) ?? undefined;
const oneOf = <T extends string>(q: URLSearchParams, name: string, allowed: readonly T[]): T | undefined => {
  const v = q.get(name);
  if (v === null || v === '') return undefined;
  if (!(allowed as readonly string[]).includes(v)) throw new CoapfwError('INVALID_ARGUMENT', `${name}: expected one of ${allowed.join(', ')}`);
  return v as T;
};
const rolloutId = (ctx: HttpContext): number => {
  const id = ctx.params.id!;
  if (!/^\d{1,15}$/.test(id) || Number(id) < 1) throw new CoapfwError('NOT_FOUND', `no rollout '${id.slice(0, 20)}'`);
  return Number(id);
};

/** Who acts: the token holder. A missing or wrong token is UNAUTHORIZED. */
function operator(req: IncomingMessage, token: string): string {
  if (!authorized(req.headers.authorization, token)) throw new CoapfwError('UNAUTHORIZED', 'operator actions need the token (Authorization: Bearer <token>)');
  const who = req.headers['x-coapfw-operator'];
  return typeof who === 'string' && /^[\w.@ -]{1,64}$/.test(who) ? who : 'operator';
}

/** The API's routes. */
export function apiRoutes(api: ApiContext): Routes {
  const { store, engine } = api;
  const page = <T>(items: T[], limit: number | undefined, cursor: (t: T) => string | number): { items: T[]; next: string | number | undefined } => ({
    items,
    next: items.length > 0 && items.length === (limit ?? 100) ? cursor(items[items.length - 1]!) : undefined,
  });
  const action = (f: (id: number, by: string) => Promise<unknown>) => async (ctx: HttpContext) => {
    const by = operator(ctx.req, api.token);
    return f(rolloutId(ctx), by);
  };
  return new Routes()
    .add('GET', '/api/summary', async () => summary(store))
    .add('GET', '/api/devices', async ({ query }) => {
      const limit = int(query, 'limit', 1);
      const items = await store.listDevices({
        limit,
        after: text(query, 'after'),
        classId: text(query, 'class'),
        group: text(query, 'group'),
        state: oneOf<DeviceState>(query, 'state', ['registered', ...REPORT_STATES]),
      });
      return page(items, limit, (d) => d.id);
    })
    .add('GET', '/api/devices/:id', async ({ params }) => {
      const device = await store.getDevice(params.id!);
      if (device === undefined) throw new CoapfwError('NOT_FOUND', `no device '${params.id!.slice(0, 64)}'`);
      const [history, command, rollouts] = await Promise.all([store.listHistory(device.id, { limit: 50 }), store.openCommand(device.id), store.deviceRollouts(device.id)]);
      return { device, command, rollouts, history };
    })
    .add('GET', '/api/devices/:id/history', async ({ params, query }) => {
      const limit = int(query, 'limit', 1);
      const items = await store.listHistory(params.id!, { limit, before: int(query, 'before', 1) });
      return page(items, limit, (h) => h.id);
    })
    .add('GET', '/api/releases', async ({ query }) => ({ items: await store.listReleases({ classId: text(query, 'class'), limit: int(query, 'limit', 1) }) }))
    .add('GET', '/api/rollouts', async ({ query }) => {
      const list = await store.listRollouts({ state: oneOf<RolloutState>(query, 'state', ROLLOUT_STATES), classId: text(query, 'class'), limit: int(query, 'limit', 1) ?? 20 });
      return { items: await Promise.all(list.map((r) => engine.progress(r.id))) };
    })
    .add('GET', '/api/rollouts/:id', async (ctx) => engine.progress(rolloutId(ctx)))
    .add('GET', '/api/rollouts/:id/targets', async (ctx) => {
      const limit = int(ctx.query, 'limit', 1);
      const items = await store.listRolloutTargets(rolloutId(ctx), {
        wave: int(ctx.query, 'wave'),
        state: oneOf<TargetState>(ctx.query, 'state', TARGET_STATES),
        after: text(ctx.query, 'after'),
        limit,
      });
      return page(items, limit, (t) => t.deviceId);
    })
    .add('POST', '/api/rollouts', async ({ req }) => {
      const createdBy = operator(req, api.token);
      const body = (await readJson(req, api.maxBodyBytes)) as { classId?: unknown; sequence?: unknown; group?: unknown; waves?: unknown };
      if (typeof body !== 'object' || body === null) throw new CoapfwError('INVALID_ARGUMENT', 'expected a JSON object { classId, sequence, group?, waves? }');
      return engine.create({
        classId: body.classId as string,
        sequence: body.sequence as number,
        ...(body.group === undefined ? {} : { group: body.group as string }),
        ...(body.waves === undefined ? {} : { waves: body.waves as WaveSpec[] }),
        createdBy,
      });
    })
    .add('POST', '/api/rollouts/:id/pause', action((id, by) => engine.pause(id, by)))
    .add('POST', '/api/rollouts/:id/resume', action((id, by) => engine.resume(id, by)))
    .add('POST', '/api/rollouts/:id/abort', action((id, by) => engine.abort(id, by)));
}

/** Counts for the page header: devices by state, releases, active rollouts. */
async function summary(store: Store): Promise<unknown> {
  const [byState, releases, running, paused] = await Promise.all([
    store.countDevicesByState(),
    store.listReleases({ limit: 20 }),
    store.listRollouts({ state: 'running' }),
    store.listRollouts({ state: 'paused' }),
  ]);
  const devices = Object.values(byState).reduce((n, v) => n + (v ?? 0), 0);
  return { devices, byState, releases: releases.length, activeRollouts: running.length + paused.length, paused: paused.length };
}
