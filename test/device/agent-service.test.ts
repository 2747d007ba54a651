/**
 * Device agents against the real update server (startUpdateServer on SQLite,
 * in this process, loopback): one per mode and one over coaps, a release
 * published over coaps by a publisher identity; every device ends confirmed
 * on the new sequence, the negotiated one no earlier than the time it asked
 * for (server-side timestamps), with every transition in the store's history
 * under strictly increasing report counters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { DeviceAgent } from '../../src/device/agent.js';
import { agentLink, type AgentEvent, type DeviceAgentOptions } from '../../src/device/agent-options.js';
import type { AgentMode } from '../../src/device/agent-wire.js';
import { provisionDevice } from '../../src/device/device.js';
import { createLayout } from '../../src/flash/layout.js';
import { decodeMessage } from '../../src/codec/message.js';
import { OptionNumber } from '../../src/codec/numbers.js';
import { getOption } from '../../src/codec/options.js';
import type { Transport } from '../../src/core/transport.js';
import { tapTransport } from '../../src/testing/tap.js';
import { MemoryFlash } from '../../src/testing/index.js';
import { SqliteHarness } from '../service/harness.js';
import { CLASS, VENDOR } from '../service/fixtures.js';
import { eventually, PSK, publishOver, SIGNER, signedRelease, startService, type Service } from '../service/service-harness.js';

const h = new SqliteHarness();
const qblockRequests = new Map<AgentEvent[], number>();

function asksQBlock2(data: Uint8Array): boolean {
  try {
    return getOption(decodeMessage(data), OptionNumber.Q_BLOCK2) !== undefined;
  } catch {
    return false;
  }
}
let svc: Service;
const clients: CoapClient[] = [];
const agents: DeviceAgent[] = [];

beforeAll(async () => {
  svc = await startService(h, { pollS: 2 });
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await Promise.all(clients.map((c) => c.close()));
  await svc.close();
  await h.cleanup();
});

async function startAgent(id: string | undefined, mode: AgentMode, over: Partial<DeviceAgentOptions> = {}, secure?: keyof typeof PSK): Promise<AgentEvent[]> {
  const flash = new MemoryFlash({ size: 128 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 48 * 1024 });
  await provisionDevice(flash, layout, new TextEncoder().encode(`factory ${id}`.padEnd(64, '.')), 0);
  const server = secure ? svc.coapsUrl : svc.coapUrl;
  const events: AgentEvent[] = [];
  // Requests asking for Q-Block2 (RFC 9177), counted above DTLS: the update tries it first.
  const tap = (t: Transport): Transport => tapTransport(t, { sent: (d) => void (asksQBlock2(d) && qblockRequests.set(events, (qblockRequests.get(events) ?? 0) + 1)) });
  const client = await openClient(`${server}/`, { params: { ackTimeoutMs: 500 }, wrapTransport: tap, ...(secure ? { psk: PSK[secure] } : {}) });
  clients.push(client);
  const agent = new DeviceAgent({
    flash,
    layout,
    server,
    link: agentLink(client),
    trust: { anchors: [{ name: 'oem', publicKey: SIGNER.publicKey }] },
    vendorId: Buffer.from(VENDOR, 'hex'),
    classId: Buffer.from(CLASS, 'hex'),
    mode,
    deviceId: id,
    onEvent: (e) => events.push(e),
    ...over,
  });
  agents.push(agent);
  await agent.start();
  return events;
}

describe('device agents against the update server (SQLite)', () => {
  it('client, server, negotiated (defer 2 s) and a coaps device all end confirmed on the release', { timeout: 60_000 }, async () => {
    const store = svc.server.store;
    const negotiated = await startAgent('neg-1', 'negotiated', { answerOffer: () => ({ answer: 'defer', defer: 2 }) });
    const plain = await startAgent('srv-1', 'server');
    const client = await startAgent('cli-1', 'client');
    const secure = await startAgent(undefined, 'server', {}, 'dev1');
    await eventually(async () => ((await store.listDevices()).length === 4 ? true : undefined), 10_000, 'four registrations');
    // The server names a device that registered with POST /d over coaps by its PSK identity.
    expect(await eventually(() => secure.find((e) => e.type === 'registered'), 10_000, 'the coaps registration')).toMatchObject({ id: PSK.dev1.identity });

    const publisher = await svc.secure('publisher');
    const { release } = await publishOver(publisher, signedRelease(1), { urgency: 'critical', downtime: 7 });
    expect(release.code).toBe(0x41);

    const ids = ['neg-1', 'srv-1', 'cli-1', PSK.dev1.identity];
    await eventually(async () => {
      const all = await Promise.all(ids.map((id) => store.getDevice(id)));
      return all.every((d) => d?.state === 'confirmed' && d.installedSeq === 1) ? true : undefined;
    }, 45_000, 'every device confirmed on sequence 1');

    // Told before it started, with the release's downtime.
    const downtime = plain.find((e) => e.type === 'downtime');
    expect(downtime).toMatchObject({ seq: 1, seconds: 7 });
    expect(plain.indexOf(downtime!)).toBeLessThan(plain.findIndex((e) => e.type === 'update-start'));

    // The agent hands its link's response stream to the update, which asks for Q-Block2 (RFC 9177) first; the
    // service serves its release blobs (service/releases.ts blobResolver) as the file server serves files, so
    // each image came by Q-Block2, over coaps too.
    for (const evs of [negotiated, plain, client, secure]) {
      expect(qblockRequests.get(evs)).toBeGreaterThan(0);
      expect(evs.flatMap((e) => (e.type === 'update' && e.event.type === 'transfer' ? [e.event.mode] : []))).toEqual(['qblock2']);
    }

    for (const id of ids) {
      const history = (await store.listHistory(id)).reverse();
      const states = history.map((e) => e.transition);
      expect(states[0], id).toBe('registered');
      expect(states.slice(-4), id).toEqual(['downloaded', 'installing', 'installed', 'confirmed']);
      expect(states, id).toContain('downloading');
      const counters = history.flatMap((e) => (e.reportSeq === undefined ? [] : [e.reportSeq]));
      expect(counters, id).toEqual(counters.map((_c, i) => i + 1));
    }

    // Negotiated: the server's own clock says the download started no earlier than answer + 2 s.
    const command = (await store.listCommands('neg-1')).find((c) => c.sequence === 1)!;
    expect(command).toMatchObject({ kind: 'announce', deferS: 2, state: 'done' });
    const started = (await store.listHistory('neg-1')).reverse().find((e) => e.transition === 'downloading')!;
    expect(started.at).toBeGreaterThanOrEqual(command.answeredAt! + 2000);
    expect(negotiated.filter((e) => e.type === 'answered')).toHaveLength(1);
  });
});
