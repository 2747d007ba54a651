/**
 * Privacy of the update traffic (issue 14, item 5), on a capture of every
 * datagram a device exchanges over plain CoAP (the in-memory network's log):
 * no device identifier in any of them, reports under a fresh pseudonym and
 * without free text, the same requests of the same sizes for every device of
 * a class whatever trust version it holds, and a first check delayed by a
 * random time on the runtime's clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeMessage } from '../../src/codec/message.js';
import { OptionNumber } from '../../src/codec/numbers.js';
import { updateDevice } from '../../src/device/device-update.js';
import { statusPathFor } from '../../src/device/privacy.js';
import { runUpdate } from '../../src/device/updater.js';
import { createTrustUpdate, applyTrustUpdate } from '../../src/suit/trust-update.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { anchors, radioRole } from '../suit/trust-helpers.js';
import { APP1, COMPONENTS, K, PLAIN_URI, SECURE_URI, board, deviceState, release, serve } from './trust-helpers.js';
import { MemUpdateServer, SERVER } from './update-helpers.js';

let server: MemUpdateServer;
afterEach(async () => server?.close());

const SERIAL = 'SN-4711-ZX9Q';
const v1 = deviceState();
const rotation = createTrustUpdate(
  { ...v1, version: 2, anchors: [...v1.anchors.filter((a) => a.name !== 'a1'), ...anchors('a2')], roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['a2']) : r)) },
  [K.a1, K.a2],
);

let boots = 0;

/** Power on, update, reboot one device of the class with id `id`; the datagrams it sent and received. */
async function deviceRun(id: string, state = v1, seq = 1) {
  const dev = await board(state, seq);
  const runtime = new FakeRuntime(++boots); // the device's randomness differs at every power-on
  const c = server.client(runtime);
  const from = server.net.log.length;
  try {
    const r = await updateDevice({ flash: dev.flash, layout: dev.layout, request: c.request, manifestUri: PLAIN_URI, runtime, components: COMPONENTS, statusPath: statusPathFor(PLAIN_URI, id, () => runtime.random()) });
    return { status: r.status, datagrams: server.net.log.slice(from) };
  } finally {
    await c.close();
  }
}

const contains = (data: Uint8Array, text: string): boolean => Buffer.from(data).includes(Buffer.from(text));

describe('plain CoAP capture', () => {
  it('no datagram of an update (install, reboot report) or of a refusal carries the device id; reports go under anon-* without message text', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]), chain: [rotation] });
    const ok = await deviceRun(SERIAL);
    expect(ok.status.result).toBe('installed');
    serve(server, { images: [APP1], manifest: release('app', APP1, 11, [K.a2]), chain: [rotation] });
    const refused = await deviceRun(SERIAL);
    expect(refused.status).toMatchObject({ result: 'rejected', error: 'KEY_NOT_AUTHORIZED', message: expect.any(String) });
    const all = [...ok.datagrams, ...refused.datagrams];
    expect(all.length).toBeGreaterThan(10);
    for (const d of all) {
      expect(contains(d.data, SERIAL), 'a datagram names the device').toBe(false);
      expect(contains(d.data, '"message"'), 'a report carries free text in the clear').toBe(false);
    }
    // Three reports (installed, confirmed after the reboot, rejected) arrived, each run under its own pseudonym.
    expect(server.reports.map((r) => r.report.result)).toEqual(['installed', 'confirmed', 'rejected']);
    const names = server.reports.map((r) => r.device);
    for (const n of names) expect(n).toMatch(/^anon-[0-9a-f]{16}$/);
    expect(names[0]).toBe(names[1]);
    expect(names[2]).not.toBe(names[0]);
    // Over coaps the identity is the device's (inside DTLS).
    expect(statusPathFor(SECURE_URI, SERIAL, Math.random)).toBe(`/status/${SERIAL}`);
  });

  it('every device of a class sends the same requests of the same sizes, whatever its id or trust version', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]), chain: [rotation] });
    const behind = await deviceRun('dev-a', v1, 10);
    const ahead = await deviceRun('device-number-two', applyTrustUpdate(v1, rotation), 10);
    expect([behind.status.result, ahead.status.result]).toEqual(['up-to-date', 'up-to-date']);
    const shape = (log: typeof behind.datagrams) =>
      log
        .filter((d) => d.to.address === SERVER.address)
        .map((d) => {
          const m = decodeMessage(d.data);
          // The report's pseudonym is fresh per power-on by design: same length, other digits.
          const value = (v: Uint8Array): string => Buffer.from(v).toString().replace(/^anon-[0-9a-f]{16}$/, 'anon-*');
          const opts = m.options.filter((o) => o.number !== OptionNumber.ETAG).map((o) => `${o.number}=${value(o.value)}`);
          return `${m.type}/${m.code} ${opts.join(',')} len=${d.data.length}`;
        });
    expect(shape(behind.datagrams).length).toBeGreaterThanOrEqual(4); // chain, revocation list, manifest, report
    expect(shape(ahead.datagrams)).toEqual(shape(behind.datagrams));
  });
});

describe('first check after power-on', () => {
  it('waits a random time in [0, firstCheckDelayMs) on the runtime clock before the first datagram, different per device', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [APP1], manifest: release('app', APP1, 1, [K.b1]) });
    const MAX = 600_000;
    const firsts: number[] = [];
    for (const seed of [1, 2, 3]) {
      const dev = await board(v1, 1);
      const runtime = new FakeRuntime(seed);
      const c = server.client(runtime);
      let first: number | undefined;
      server.net.filter = (fromPeer) => {
        if (fromPeer.address !== SERVER.address && first === undefined) first = runtime.now();
        return true;
      };
      let done = false;
      const p = runUpdate({ flash: dev.flash, layout: dev.layout, request: c.request, manifestUri: PLAIN_URI, runtime, components: COMPONENTS, firstCheckDelayMs: MAX }).finally(() => (done = true));
      while (!done) {
        await new Promise((r) => setImmediate(r));
        runtime.advance(1000);
      }
      expect((await p).result).toBe('up-to-date');
      await c.close();
      expect(first).toBeDefined();
      expect(first!).toBeGreaterThan(0);
      expect(first!).toBeLessThan(MAX + 1000);
      firsts.push(first!);
    }
    server.net.filter = () => true;
    expect(new Set(firsts).size).toBe(3);
  });
});
