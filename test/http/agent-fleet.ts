/**
 * A fleet of simulated devices over the real protocol for the page test:
 * the update server (SQLite, loopback) with the rollout engine behind its
 * Targeting seam, `count` device agents (server-initiated, and negotiated
 * ones that defer by an hour, so the rollout stays running), a critical
 * release published over coaps, and the operator's HTTP server.
 */
import { openClient, type CoapClient } from '../../src/client/open.js';
import { DeviceAgent } from '../../src/device/agent.js';
import { agentLink } from '../../src/device/agent-options.js';
import { provisionDevice } from '../../src/device/device.js';
import { createLayout } from '../../src/flash/layout.js';
import { startHttpServer, type HttpServer } from '../../src/http/server.js';
import { ClassTargeting } from '../../src/service/modes.js';
import { RolloutEngine } from '../../src/service/rollout-engine.js';
import { rolloutTargeting } from '../../src/service/rollout-targeting.js';
import type { Store } from '../../src/service/store.js';
import { MemoryFlash } from '../../src/testing/index.js';
import { CLASS, VENDOR } from '../service/fixtures.js';
import { SqliteHarness } from '../service/harness.js';
import { eventually, publishOver, SIGNER, signedRelease, startService, type Service } from '../service/service-harness.js';

/** The fixture's handles. */
export interface AgentFleet {
  readonly store: Store;
  readonly engine: RolloutEngine;
  readonly http: HttpServer;
  readonly token: string;
  readonly rolloutId: number;
  close(): Promise<void>;
}

export const AGENT_TOKEN = 'fleet-page-token-0123456789abcdef';

/** Start the fleet and wait until its rollout is in its second wave with devices confirmed there. */
export async function startAgentFleet(count = 50): Promise<AgentFleet> {
  const h = new SqliteHarness();
  let engine!: RolloutEngine;
  const svc: Service = await startService(h, {
    pollS: 5,
    targeting: (store) => {
      engine = new RolloutEngine({ store, intervalMs: 250, reactMs: 50 });
      return rolloutTargeting(store, engine, new ClassTargeting(store, Date.now, Math.random, { normalWindowS: 0 }));
    },
  });
  engine.start();
  const store = svc.server.store;
  const clients: CoapClient[] = [];
  const agents: DeviceAgent[] = [];
  for (let i = 0; i < count; i++) {
    const id = `sensor-${String(i + 1).padStart(3, '0')}`;
    const flash = new MemoryFlash({ size: 128 * 1024, eraseBlockSize: 4096 });
    const layout = createLayout(flash, { slotSize: 48 * 1024 });
    await provisionDevice(flash, layout, new TextEncoder().encode(`factory ${id}`.padEnd(64, '.')), 0);
    const client = await openClient(`${svc.coapUrl}/`, { params: { ackTimeoutMs: 500 } });
    clients.push(client);
    const negotiated = i % 5 === 4;
    const agent = new DeviceAgent({
      flash,
      layout,
      server: svc.coapUrl,
      link: agentLink(client),
      trust: { anchors: [{ name: 'oem', publicKey: SIGNER.publicKey }] },
      vendorId: Buffer.from(VENDOR, 'hex'),
      classId: Buffer.from(CLASS, 'hex'),
      mode: negotiated ? 'negotiated' : 'server',
      deviceId: id,
      group: i < count / 2 ? 'building-a' : 'building-b',
      answerOffer: () => ({ answer: 'defer', defer: 3600 }),
    });
    agents.push(agent);
    await agent.start();
  }
  await eventually(async () => ((await store.listDevices({ limit: 1000 })).length === count ? true : undefined), 20_000, `${count} registrations`);
  const publisher = await svc.secure('publisher');
  await publishOver(publisher, signedRelease(1), { urgency: 'critical', downtime: 30 });
  const [rollout] = await store.listRollouts({ classId: CLASS });
  // Server-initiated devices of the second wave confirm within seconds; negotiated ones wait an hour.
  await eventually(async () => {
    const counts = await store.rolloutCounts(rollout!.id);
    return counts[1] !== undefined && counts[1].byState.confirmed >= 20 ? true : undefined;
  }, 60_000, 'the second wave under way');
  const http = await startHttpServer({ port: 0, store, engine, token: AGENT_TOKEN });
  return {
    store,
    engine,
    http,
    token: AGENT_TOKEN,
    rolloutId: rollout!.id,
    async close() {
      await http.close();
      await Promise.all(agents.map((a) => a.stop()));
      await Promise.all(clients.map((c) => c.close()));
      await engine.stop();
      await svc.close();
      await h.cleanup();
    },
  };
}
