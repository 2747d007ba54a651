/**
 * Power cut at every flash operation of a trust update, a revocation list
 * write and an owner transfer: after every restart the device reads either
 * the old or the new trust state, never a mix and never none, and it never
 * goes back to an older one.
 */
import { describe, expect, it } from 'vitest';
import { MemoryFlash } from '../../src/flash/memory.js';
import { powerCutSweep } from '../../src/flash/power-cut.js';
import { mulberry32 } from '../../src/flash/prng.js';
import { TrustStore } from '../../src/flash/trust-store.js';
import {
  applyOwnerTransfer,
  applyRevocationList,
  applyTrustUpdate,
  createOwnerTransfer,
  createRevocationList,
  createTrustUpdate,
  encodeTrustState,
  type TrustState,
} from '../../src/suit/index.js';
import { K, anchors, boardState, radioRole, trustRoleOf } from '../suit/trust-helpers.js';

const EBS = 512;
const AREA = TrustStore.areaSize({ size: EBS, eraseBlockSize: EBS, writeAlignment: 8 });

const v1 = boardState();
const updateDoc = createTrustUpdate(
  { ...v1, version: 2, anchors: [...v1.anchors.filter((a) => a.name !== 'a1'), ...anchors('a2')], roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['a2']) : r)) },
  [K.a1, K.a2],
);
const listDoc = createRevocationList({ sequence: 1, revoked: [K.b1.publicKey, K.stranger.publicKey] }, [K.t1, K.t3]);
const transferDoc = createOwnerTransfer(
  { version: 50, trust: { anchors: anchors('community'), roles: [trustRoleOf(['community'], 1), { name: 'all', scope: { kind: 'any-component' }, signers: ['community'], threshold: 1 }] }, source: 'coaps://community.example/' },
  K.owner,
);

/** The states a device passes through, in order: each step applies one document to the previous. */
const steps: ((s: TrustState) => TrustState)[] = [
  (s) => applyTrustUpdate(s, updateDoc),
  (s) => applyRevocationList(s, listDoc).state,
  (s) => applyOwnerTransfer(s, transferDoc),
];
const chain: TrustState[] = [v1];
for (const step of steps) chain.push(step(chain[chain.length - 1]!));
const encoded = chain.map((s) => Buffer.from(encodeTrustState(s)).toString('hex'));

interface Device {
  flash: MemoryFlash;
  /** Index in `chain` of the state read at each power-on. */
  seen: number[];
}

function sweepOf(first: number, last: number, tornWrite: 'prefix' | 'scatter') {
  return powerCutSweep<Device, number>({
    setup: async (seed) => {
      const flash = new MemoryFlash({ size: AREA + EBS, eraseBlockSize: EBS, writeAlignment: 8, random: mulberry32(seed), tornWrite });
      await TrustStore.provision(flash, { offset: EBS, size: AREA }, chain[first]!);
      return { flash, seen: [] };
    },
    run: async (d) => {
      const store = await TrustStore.open(d.flash, { offset: EBS, size: AREA });
      const s = store.state();
      expect(s, 'a power cut left no trust state').toBeDefined();
      const at = encoded.indexOf(Buffer.from(encodeTrustState(s!)).toString('hex'));
      expect(at, 'a power cut left a state that is neither the old nor the new one').toBeGreaterThanOrEqual(0);
      d.seen.push(at);
      for (let i = at; i < last; i++) await store.write(steps[i]!(chain[i]!));
      return encoded.indexOf(Buffer.from(encodeTrustState(store.state()!)).toString('hex'));
    },
    check: (result, d, { cutIndex }) => {
      expect(result).toBe(last);
      // Never back: each power-on reads the state of the last completed write or a later one.
      for (let i = 1; i < d.seen.length; i++) expect(d.seen[i]!).toBeGreaterThanOrEqual(d.seen[i - 1]!);
      expect(d.seen[0]).toBe(first);
      if (cutIndex !== undefined) expect(d.seen.length).toBeGreaterThanOrEqual(1);
    },
  });
}

describe('trust store under power cuts', () => {
  it('a trust update: every cut leaves the old or the new trust set', async () => {
    const r = await sweepOf(0, 1, 'prefix');
    // 8 copy blocks erased, the state programmed in 256-byte chunks, one pointer record.
    expect(r.ops).toBeGreaterThanOrEqual(11);
    expect(r.cutsHit).toBe(r.ops);
  });

  it('a revocation list write', async () => {
    const r = await sweepOf(1, 2, 'prefix');
    expect(r.cutsHit).toBe(r.ops);
  });

  it('an owner transfer, then all three in a row, with scattered torn writes', async () => {
    const one = await sweepOf(2, 3, 'scatter');
    expect(one.cutsHit).toBe(one.ops);
    const all = await sweepOf(0, 3, 'scatter');
    expect(all.runs).toBe(all.ops);
    expect(all.cutsHit).toBe(all.ops);
  });

  it('the pointer log wraps while cuts land (many updates in a row)', async () => {
    // Toggle between two states 12 times: the 52-byte pointer records fill a 512-byte page after 9.
    const a = chain[1]!;
    const b = applyRevocationList(a, listDoc).state;
    const flashOps: number[] = [];
    const r = await powerCutSweep<{ flash: MemoryFlash; seen: number[] }, number>({
      setup: async (seed) => {
        const flash = new MemoryFlash({ size: AREA + EBS, eraseBlockSize: EBS, writeAlignment: 8, random: mulberry32(seed) });
        await TrustStore.provision(flash, { offset: EBS, size: AREA }, { ...a, version: 100 });
        return { flash, seen: [] };
      },
      run: async (d) => {
        const store = await TrustStore.open(d.flash, { offset: EBS, size: AREA });
        let s = store.state()!;
        d.seen.push(s.version);
        while (s.version < 112) {
          s = { ...(s.version % 2 ? a : b), version: s.version + 1 };
          await store.write(s);
        }
        flashOps.push(store.stats.pointer.erases);
        return s.version;
      },
      check: (result, d) => {
        expect(result).toBe(112);
        for (let i = 1; i < d.seen.length; i++) expect(d.seen[i]!).toBeGreaterThanOrEqual(d.seen[i - 1]!);
      },
      cutIndexes: (ops) => Array.from({ length: ops }, (_, i) => i).filter((i) => i % 7 === 0 || i > ops - 12),
    });
    expect(r.runs).toBeGreaterThan(25);
    expect(Math.max(...flashOps)).toBeGreaterThanOrEqual(1);
  });
});
