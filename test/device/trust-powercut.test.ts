/**
 * Power cut at every flash operation of a device update that first takes a
 * trust update (with a revocation list) or a revocation list alone from the
 * server: at every power-on the trust store holds the old trust state or
 * the new one, never a mix (the rotation without the list), never none, and
 * never the old one again once the new one was read; every run ends with
 * the new state and the new image running.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, describe, expect, it } from 'vitest';
import { updateDevice } from '../../src/device/device-update.js';
import { readDeviceTrust } from '../../src/device/trust-device.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import type { MemoryFlash } from '../../src/flash/memory.js';
import type { FlashLayout } from '../../src/flash/layout.js';
import { applyRevocationList, createRevocationList } from '../../src/suit/revocation.js';
import { applyTrustUpdate, createTrustUpdate } from '../../src/suit/trust-update.js';
import { encodeTrustState } from '../../src/suit/trust-codec.js';
import type { TrustState } from '../../src/suit/trust-set.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { anchors, radioRole } from '../suit/trust-helpers.js';
import { APP1, COMPONENTS, K, PLAIN_URI, RADIO1, board, deviceState, release, running, serve, stateHex, type Offer } from './trust-helpers.js';
import { hex, MemUpdateServer } from './update-helpers.js';

const v1 = deviceState();
const v2set = { ...v1, version: 2, anchors: [...v1.anchors.filter((a) => a.name !== 'a1'), ...anchors('a2')], roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['a2']) : r)) };
const rotation = createTrustUpdate(v2set, [K.a1, K.a2]);
const list = createRevocationList({ sequence: 1, revoked: [K.stranger.publicKey, K.b2.publicKey] }, [K.t2, K.t3]);

const server = new MemUpdateServer();
afterAll(() => server.close());
const summary: Record<string, unknown>[] = [];
afterAll(() => console.log(JSON.stringify({ test: 'trust-powercut', sweeps: summary })));

interface Device {
  flash: MemoryFlash;
  layout: FlashLayout;
  /** Per power-on: 0 the old state, 1 the new one. */
  seen: number[];
}

async function sweep(offer: Offer, next: TrustState, image: Uint8Array, index: 0 | 1) {
  const states = [stateHex(v1), stateHex(next)];
  // After a cut, the state the next power-on read: the old one (cut before the commit) or the new one.
  const afterCut = [0, 0];
  const report = await powerCutSweep<Device, string>({
    setup: async (seed) => ({ ...(await board(v1, 1, seed)), seen: [] }),
    run: async (d) => {
      const s = await readDeviceTrust(d.flash, d.layout);
      expect(s, 'a power cut left no trust state').toBeDefined();
      const at = states.indexOf(hex(encodeTrustState(s!)));
      expect(at, 'a power cut left a trust state that is neither the old nor the new one').toBeGreaterThanOrEqual(0);
      d.seen.push(at);
      serve(server, offer);
      const runtime = new FakeRuntime();
      const c = server.client(runtime);
      try {
        const r = await updateDevice({ flash: d.flash, layout: d.layout, request: c.request, manifestUri: PLAIN_URI, runtime, components: COMPONENTS });
        return r.status.result;
      } finally {
        await c.close();
      }
    },
    check: async (result, d) => {
      expect(['installed', 'up-to-date']).toContain(result);
      for (let i = 1; i < d.seen.length; i++) expect(d.seen[i]!, 'went back to the old trust state').toBeGreaterThanOrEqual(d.seen[i - 1]!);
      if (d.seen.length > 1) afterCut[d.seen[1]!]!++;
      expect(hex(encodeTrustState((await readDeviceTrust(d.flash, d.layout))!))).toBe(states[1]);
      expect((await running(d))[index]).toBe(hex(sha256(image)));
    },
  });
  // Cuts landed both before and after the trust store's commit.
  expect(afterCut[0]).toBeGreaterThan(0);
  expect(afterCut[1]).toBeGreaterThan(0);
  return { ...report, oldAfterCut: afterCut[0], newAfterCut: afterCut[1] };
}

describe('power cut at every flash operation of a trust refresh in the device flow', () => {
  it('a trust update with a revocation list (one store write), then the release signed by the rotated-in key', { timeout: 120_000 }, async () => {
    const next = applyRevocationList(applyTrustUpdate(v1, rotation), list).state;
    const r = await sweep({ images: [RADIO1], manifest: release('radio', RADIO1, 10, [K.a2]), chain: [rotation], revocation: list }, next, RADIO1, 1);
    summary.push({ scenario: 'rotation+revocation', ...r });
    expect(r.runs).toBe(r.ops);
    expect(r.cutsHit).toBeGreaterThan(0);
  });

  it('a revocation list alone, then a release of a key not revoked', { timeout: 120_000 }, async () => {
    const next = applyRevocationList(v1, list).state;
    const r = await sweep({ images: [APP1], manifest: release('app', APP1, 10, [K.b1]), revocation: list }, next, APP1, 0);
    summary.push({ scenario: 'revocation', ...r });
    expect(r.cutsHit).toBeGreaterThan(0);
  });
});
