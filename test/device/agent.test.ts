/**
 * The device agent against the in-memory service double on a fake clock:
 * registration, the three modes, reports and their counter, downtime told
 * before the start, re-registration after a server restart and after the
 * server forgot the device, and a power cut mid-download that a new agent
 * on the same flash resumes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isCoapfwError } from '../../src/errors.js';
import { DeviceAgent } from '../../src/device/agent.js';
import type { AgentEvent, DeviceAgentOptions } from '../../src/device/agent-options.js';
import { provisionDevice } from '../../src/device/device.js';
import { createLayout, type FlashLayout } from '../../src/flash/layout.js';
import { privateKeyFromSecret } from '../../src/suit/keys.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemoryFlash } from '../../src/testing/index.js';
import { flush } from '../../src/testing/mem-transport.js';
import { SERVICE_URI, ServiceDouble } from './agent-double.js';
import { CLASS, TRUST, VENDOR, hex, image } from './update-helpers.js';

interface Device {
  readonly flash: MemoryFlash;
  readonly layout: FlashLayout;
}

async function device(): Promise<Device> {
  const flash = new MemoryFlash({ size: 256 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 96 * 1024 });
  await provisionDevice(flash, layout, new TextEncoder().encode('factory'.padEnd(64, '.')), 0);
  return { flash, layout };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** Start an agent; its events are collected. */
async function agent(svc: ServiceDouble, dev: Device, opts: Partial<DeviceAgentOptions> = {}): Promise<{ agent: DeviceAgent; events: AgentEvent[] }> {
  const events: AgentEvent[] = [];
  const link = svc.link();
  const a = new DeviceAgent({ ...dev, server: SERVICE_URI, link, trust: TRUST, vendorId: VENDOR, classId: CLASS, mode: 'server', deviceId: 'dev-1', onEvent: (e) => events.push(e), ...opts });
  cleanups.push(async () => {
    await a.stop();
    await link.close();
  });
  await a.start();
  return { agent: a, events };
}

/** Let the fake clock run until `cond` holds (bounded). */
async function until(rt: FakeRuntime, cond: () => boolean, stepMs = 50, maxMs = 600_000): Promise<void> {
  for (let t = 0; t <= maxMs; t += stepMs) {
    await flush();
    if (cond()) return;
    rt.advance(stepMs);
  }
  throw new Error('condition not reached on the fake clock');
}

const states = (svc: ServiceDouble, id = 'dev-1'): string[] => svc.reports.filter((r) => r.device === id && r.code === 0x44).map((r) => String(r.body.state));

describe('device agent (service double, fake clock)', () => {
  it('server mode: registers, obeys op:update at once, reports every transition with a counter continued from the registration', async () => {
    const rt = new FakeRuntime(1);
    const svc = new ServiceDouble(rt);
    svc.startRseq = 41; // the server accepted 41 reports from this device before (its RAM is gone)
    const img = image(40_000, 1);
    const manifest = svc.release(img, 3);
    const dev = await device();
    const { events } = await agent(svc, dev, { progressStepPercent: 25 });
    await until(rt, () => svc.observers === 1);
    expect(svc.registrations[0]!.body).toMatchObject({ vendor: hex(VENDOR), class: hex(CLASS), seq: 0, mode: 'server' });
    expect(svc.registrations[0]!.body.digest).toMatch(/^[0-9a-f]{64}$/);
    svc.command('dev-1', 'update', 3, manifest, { downtime: 12 });
    await until(rt, () => states(svc).includes('confirmed'));
    const s = states(svc);
    expect(s[0]).toBe('downloading');
    expect(s.slice(-4)).toEqual(['downloaded', 'installing', 'installed', 'confirmed']);
    // 40,000 bytes in 25 % steps: the first report and at most one per step.
    const progress = svc.reports.filter((r) => r.body.state === 'downloading');
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.length).toBeLessThanOrEqual(5);
    expect(progress.at(-1)!.body).toMatchObject({ seq: 3, total: img.length });
    const counters = svc.reports.map((r) => Number(r.body.rseq));
    expect(counters[0]).toBe(42);
    expect(counters).toEqual([...counters].sort((a, b) => a - b));
    expect(new Set(counters).size).toBe(counters.length);
    expect(svc.reports.at(-1)!.body).toMatchObject({ state: 'confirmed', seq: 3, iseq: 3, digest: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // Told before it starts.
    const dt = events.findIndex((e) => e.type === 'downtime');
    expect(events[dt]).toMatchObject({ type: 'downtime', seq: 3, seconds: 12 });
    expect(dt).toBeLessThan(events.findIndex((e) => e.type === 'update-start'));
    expect(svc.commands.get('dev-1')).toEqual({ op: 'none' });
  });

  it('negotiated mode: answers an offer with its deferral and updates only when the server triggers it', async () => {
    const rt = new FakeRuntime(2);
    const svc = new ServiceDouble(rt);
    const manifest = svc.release(image(9000, 2), 1);
    const dev = await device();
    await agent(svc, dev, { mode: 'negotiated', answerOffer: (o) => (o.urgency === 'critical' ? { answer: 'now' } : { answer: 'defer', defer: 30 }) });
    await until(rt, () => svc.observers === 1);
    svc.command('dev-1', 'offer', 1, manifest);
    await until(rt, () => svc.answers.length === 1);
    expect(svc.answers[0]!.body).toMatchObject({ answer: 'defer', defer: 30 });
    const answeredAt = svc.answers[0]!.at;
    await until(rt, () => states(svc).includes('confirmed'));
    const first = svc.reports.find((r) => r.body.state === 'downloading')!;
    expect(first.at).toBeGreaterThanOrEqual(answeredAt + 30_000);
    expect(svc.answers).toHaveLength(1);
  });

  it('client mode: observes the class manifest, verifies it, updates to a newer sequence; ignores one that does not verify', async () => {
    const rt = new FakeRuntime(3);
    const svc = new ServiceDouble(rt);
    const dev = await device();
    const { events } = await agent(svc, dev, { mode: 'client' });
    // No release yet: 4.04, looked at again after the poll interval.
    await until(rt, () => events.some((e) => e.type === 'observe-lost'));
    const stranger = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(7));
    svc.release(image(5000, 4), 2, stranger);
    await until(rt, () => events.some((e) => e.type === 'ignored'));
    expect(events.find((e) => e.type === 'ignored')).toMatchObject({ error: expect.stringMatching(/UNTRUSTED_KEY|SIGNATURE/) });
    svc.release(image(5000, 5), 3);
    await until(rt, () => states(svc).includes('confirmed'));
    expect(svc.reports.at(-1)!.body).toMatchObject({ state: 'confirmed', iseq: 3 });
  });

  it('client mode: waits while the device is busy', async () => {
    const rt = new FakeRuntime(4);
    const svc = new ServiceDouble(rt);
    svc.release(image(3000, 6), 1);
    const dev = await device();
    let idle = false;
    let asked = 0;
    await agent(svc, dev, { mode: 'client', isIdle: () => (asked++, idle) });
    await until(rt, () => asked >= 2);
    expect(svc.reports).toHaveLength(0);
    idle = true;
    await until(rt, () => states(svc).includes('confirmed'));
  });

  it('keeps its registration across a server restart: re-registers within the poll interval and gets the command', async () => {
    const rt = new FakeRuntime(5);
    const svc = new ServiceDouble(rt);
    svc.poll = 20;
    const manifest = svc.release(image(6000, 7), 1);
    const dev = await device();
    const { events } = await agent(svc, dev);
    await until(rt, () => svc.observers === 1);
    await svc.restart();
    expect(svc.observers).toBe(0);
    const t0 = rt.now();
    await until(rt, () => svc.observers === 1);
    // A re-registration with the same token, at poll..1.25 poll after the last notification.
    expect(rt.now() - t0).toBeLessThanOrEqual(25_000 + 100);
    svc.command('dev-1', 'update', 1, manifest);
    await until(rt, () => states(svc).includes('confirmed'));
    expect(events.filter((e) => e.type === 'registered')).toHaveLength(1);
  });

  it('a server that is gone: jittered back-off, then registration again when it answers', async () => {
    const rt = new FakeRuntime(6);
    const svc = new ServiceDouble(rt);
    svc.poll = 10;
    const dev = await device();
    const { events } = await agent(svc, dev);
    await until(rt, () => svc.observers === 1);
    svc.silent = true;
    await until(rt, () => events.filter((e) => e.type === 'register-failed').length >= 3);
    const waits = events.filter((e): e is Extract<AgentEvent, { type: 'waiting' }> => e.type === 'waiting').map((e) => e.ms);
    expect(waits.length).toBeGreaterThanOrEqual(3);
    expect(new Set(waits).size).toBe(waits.length); // jittered
    svc.silent = false;
    await svc.restart();
    await until(rt, () => svc.observers === 1, 50, 300_000);
    expect(events.filter((e) => e.type === 'registered').length).toBeGreaterThanOrEqual(2);
  });

  it('a server that forgot the device (4.04 on a report) is registered with again, and the report goes through', async () => {
    const rt = new FakeRuntime(7);
    const svc = new ServiceDouble(rt);
    const manifest = svc.release(image(4000, 8), 1);
    const dev = await device();
    await agent(svc, dev);
    await until(rt, () => svc.observers === 1);
    let forgot = false;
    svc.beforeReport = (id) => {
      if (!forgot) svc.devices.delete(id);
      forgot = true;
    };
    svc.command('dev-1', 'update', 1, manifest);
    await until(rt, () => states(svc).includes('confirmed'));
    expect(svc.registrations.length).toBeGreaterThanOrEqual(2);
    expect(svc.reports.some((r) => r.code === 0x84)).toBe(true);
  });

  it('a power cut mid-download: the agent dies; a new agent on the same flash resumes from the journal and confirms', async () => {
    const rt = new FakeRuntime(8);
    const svc = new ServiceDouble(rt);
    const manifest = svc.release(image(60_000, 9), 4);
    const dev = await device();
    const first = await agent(svc, dev, { onEvent: (e) => e.type === 'update' && e.event.type === 'block' && e.event.num === 30 && dev.flash.cutAfter(0) });
    await until(rt, () => svc.observers === 1);
    svc.command('dev-1', 'update', 4, manifest);
    let ended: unknown;
    first.agent.done.catch((e: unknown) => (ended = e));
    await until(rt, () => ended !== undefined);
    expect(isCoapfwError(ended, 'POWER_CUT')).toBe(true);
    expect(first.agent.state).toBe('stopped');
    const before = svc.reports.length;
    dev.flash.powerOn();
    const second = await agent(svc, dev);
    await until(rt, () => states(svc).includes('confirmed'));
    const end = second.events.find((e) => e.type === 'update-end');
    expect(end).toMatchObject({ status: { result: 'installed' } });
    expect((end as Extract<AgentEvent, { type: 'update-end' }>).status!.blocksResumed).toBeGreaterThan(0);
    const counters = svc.reports.slice(before).map((r) => Number(r.body.rseq));
    expect(Math.min(...counters)).toBeGreaterThan(Math.max(...svc.reports.slice(0, before).map((r) => Number(r.body.rseq))));
  });

  it('op:update for the sequence it already runs is confirmed once, which closes the command', async () => {
    const rt = new FakeRuntime(9);
    const svc = new ServiceDouble(rt);
    const manifest = svc.release(image(2000, 10), 0);
    const dev = await device();
    await agent(svc, dev);
    await until(rt, () => svc.observers === 1);
    svc.command('dev-1', 'update', 0, manifest);
    await until(rt, () => svc.reports.length === 1);
    expect(svc.reports[0]!.body).toMatchObject({ state: 'confirmed', seq: 0, iseq: 0 });
    expect(svc.commands.get('dev-1')).toEqual({ op: 'none' });
  });
});
