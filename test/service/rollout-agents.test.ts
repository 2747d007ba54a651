/**
 * Rollouts over the real protocol: the update server (SQLite, loopback)
 * with the rollout engine behind its Targeting seam, device agents in the
 * server-initiated and negotiated modes, releases published over coaps.
 * - A critical release rolls out by itself: the 5 % canary first (nobody
 *   else has a command), then everyone; the rollout completes with its
 *   timeliness measured on the server's clock.
 * - A canary that cannot install (it trusts another key) fails its update:
 *   the rollout pauses by itself, the devices of later waves are never told,
 *   and the operator aborts it over the HTTP API with the token.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { DeviceAgent } from '../../src/device/agent.js';
import { agentLink } from '../../src/device/agent-options.js';
import type { AgentMode } from '../../src/device/agent-wire.js';
import { provisionDevice } from '../../src/device/device.js';
import { createLayout } from '../../src/flash/layout.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { ClassTargeting } from '../../src/service/modes.js';
import { RolloutEngine } from '../../src/service/rollout-engine.js';
import { rolloutTargeting } from '../../src/service/rollout-targeting.js';
import type { SuitPrivateKey } from '../../src/suit/keys.js';
import { MemoryFlash } from '../../src/testing/index.js';
import { CLASS, VENDOR } from './fixtures.js';
import { SqliteHarness } from './harness.js';
import { eventually, publishOver, SIGNER, signedRelease, startService, STRANGER, type Service } from './service-harness.js';

const TOKEN = 'rollout-agents-token-0123456789';

describe('rollouts over the protocol, with device agents', () => {
  let h: SqliteHarness;
  let svc: Service;
  let engine: RolloutEngine;
  let http: HttpServer;
  const clients: CoapClient[] = [];
  const agents: DeviceAgent[] = [];

  beforeEach(async () => {
    h = new SqliteHarness();
    svc = await startService(h, {
      pollS: 2,
      targeting: (store) => {
        engine = new RolloutEngine({ store, intervalMs: 200, reactMs: 50 });
        return rolloutTargeting(store, engine, new ClassTargeting(store, Date.now, Math.random, { normalWindowS: 0 }));
      },
    });
    engine.start();
    http = await startHttpServer({ port: 0, store: svc.server.store, engine, token: TOKEN });
  });
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop()));
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await engine.stop();
    await http.close();
    await svc.close();
    await h.cleanup();
  });

  async function startAgent(id: string, mode: AgentMode, trustKey: SuitPrivateKey = SIGNER): Promise<void> {
    const flash = new MemoryFlash({ size: 128 * 1024, eraseBlockSize: 4096 });
    const layout = createLayout(flash, { slotSize: 48 * 1024 });
    await provisionDevice(flash, layout, new TextEncoder().encode(`factory ${id}`.padEnd(64, '.')), 0);
    const client = await openClient(`${svc.coapUrl}/`, { params: { ackTimeoutMs: 500 } });
    clients.push(client);
    const agent = new DeviceAgent({
      flash,
      layout,
      server: svc.coapUrl,
      link: agentLink(client),
      trust: { anchors: [{ name: 'oem', publicKey: trustKey.publicKey }] },
      vendorId: Buffer.from(VENDOR, 'hex'),
      classId: Buffer.from(CLASS, 'hex'),
      mode,
      deviceId: id,
      answerOffer: () => ({ answer: 'now' }),
    });
    agents.push(agent);
    await agent.start();
  }

  const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `dev-${String(i).padStart(2, '0')}`);

  it('a critical release: the canary first, then everyone; completed, timeliness measured', { timeout: 90_000 }, async () => {
    const store = svc.server.store;
    for (const [i, id] of ids(12).entries()) await startAgent(id, i % 4 === 3 ? 'negotiated' : 'server');
    await eventually(async () => ((await store.listDevices()).length === 12 ? true : undefined), 15_000, '12 registrations');
    const publisher = await svc.secure('publisher');
    expect((await publishOver(publisher, signedRelease(1), { urgency: 'critical' })).release.code).toBe(0x41);
    const [rollout] = await store.listRollouts({ classId: CLASS });
    expect(rollout!.waves.map((w) => w.size)).toEqual([{ percent: 5 }, { percent: 100 }]);
    // The canary (5 % of 12: one device) is the only one told at first.
    const first = await store.listRolloutTargets(rollout!.id);
    expect(first.map((t) => t.deviceId)).toEqual(['dev-00']);
    expect(await store.openCommand('dev-05')).toBeUndefined();
    const done = await eventually(async () => {
      const p = await engine.progress(rollout!.id);
      return p.rollout.state === 'completed' && p.timeliness.confirmed === 12 ? p : undefined;
    }, 75_000, 'the rollout completed');
    expect(done.waves.map((w) => w.targeted)).toEqual([1, 11]);
    expect(done.timeliness.p50Ms).toBeLessThanOrEqual(done.timeliness.p90Ms!);
    expect(done.timeliness.p90Ms).toBeLessThanOrEqual(done.timeliness.p100Ms!);
    // The canary confirmed before any device of the second wave was even told.
    const canary = (await store.listRolloutTargets(rollout!.id, { wave: 0 }))[0]!;
    const history = await store.listHistory('dev-05');
    const secondStarted = done.rollout.waves[1]!.startedAt!;
    expect(canary.confirmedAt).toBeLessThanOrEqual(secondStarted);
    expect(history.filter((e) => e.transition === 'downloading').every((e) => e.at >= secondStarted)).toBe(true);
    for (const id of ids(12)) expect((await store.getDevice(id))!.installedSeq, id).toBe(1);
  });

  it('a failing canary pauses the rollout; later waves are never told; the operator aborts over HTTP', { timeout: 90_000 }, async () => {
    const store = svc.server.store;
    await startAgent('dev-00', 'server', STRANGER); // trusts another key: the update fails on it
    for (const id of ids(8).slice(1)) await startAgent(id, 'server');
    await eventually(async () => ((await store.listDevices()).length === 8 ? true : undefined), 15_000, '8 registrations');
    const publisher = await svc.secure('publisher');
    await publishOver(publisher, signedRelease(1), { urgency: 'critical' });
    const [rollout] = await store.listRollouts({ classId: CLASS });
    const paused = await eventually(async () => {
      const r = await store.getRollout(rollout!.id);
      return r?.state === 'paused' ? r : undefined;
    }, 60_000, 'the rollout paused');
    expect(paused.pauseReason).toBe('wave 0: 1 of 1 devices failed or reverted (limit 10 %)');
    expect((await store.getDevice('dev-00'))!.state).toBe('failed');
    for (const id of ids(8).slice(1)) {
      expect(await store.openCommand(id), id).toBeUndefined();
      expect((await store.getDevice(id))!.installedSeq).toBe(0);
    }
    const refused = await fetch(`${http.url}/api/rollouts/${rollout!.id}/abort`, { method: 'POST' });
    expect(refused.status).toBe(401);
    const aborted = await fetch(`${http.url}/api/rollouts/${rollout!.id}/abort`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect((await aborted.json()).state).toBe('aborted');
    expect((await store.getRollout(rollout!.id))!.state).toBe('aborted');
  });
});
