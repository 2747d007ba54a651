import { describe, expect, it } from 'vitest';
import { MemoryFlash } from '../../src/flash/memory.js';
import { RecordLog } from '../../src/flash/record-log.js';
import { MAX_TRUST_STATE_BYTES, TRUST_POINTER_KIND, TrustStore, type TrustStoreOptions } from '../../src/flash/trust-store.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { encodeCbor } from '../../src/suit/cbor.js';
import type { FlashBackend } from '../../src/flash/backend.js';
import {
  DEFAULT_TRUST_LIMITS,
  encodeTrustState,
  privateKeyFromSecret,
  type TrustState,
} from '../../src/suit/index.js';
import { K, anchors, boardState } from '../suit/trust-helpers.js';

const EBS = 512;

function chip(ebs = EBS, options: TrustStoreOptions = {}): { flash: MemoryFlash; area: { offset: number; size: number } } {
  const size = TrustStore.areaSize({ size: ebs, eraseBlockSize: ebs, writeAlignment: 8 }, options);
  const flash = new MemoryFlash({ size: size + 2 * ebs, eraseBlockSize: ebs, writeAlignment: 8 });
  return { flash, area: { offset: ebs, size } };
}

const v = (n: number): TrustState => ({ ...boardState(), version: n });

/** The largest state DEFAULT_TRUST_LIMITS allow. */
function largestState(): TrustState {
  const L = DEFAULT_TRUST_LIMITS;
  const name = (p: string, i: number): string => `${p.repeat(L.maxNameBytes - 2)}${String(i).padStart(2, '0')}`;
  const anchorsBig = Array.from({ length: L.maxAnchors }, (_, i) => ({ name: name('n', i), publicKey: privateKeyFromSecret('p256', new Uint8Array(32).fill(i + 1)).publicKey }));
  const id = (i: number): Uint8Array => new Uint8Array(L.maxIdBytes).fill(i);
  return {
    version: Number.MAX_SAFE_INTEGER,
    anchors: anchorsBig,
    roles: Array.from({ length: L.maxRoles }, (_, i) => ({
      name: name('r', i),
      scope: i === 0 ? { kind: 'trust' as const } : { kind: 'component' as const, componentId: Array.from({ length: L.maxComponentIdParts }, () => id(i)), vendorId: id(i), classId: id(i) },
      signers: anchorsBig.map((a) => a.name),
      threshold: L.maxAnchors,
    })),
    source: `coaps://${'h'.repeat(L.maxSourceBytes - 17)}.example/`,
    owner: anchorsBig[0]!.publicKey,
    revocation: { sequence: Number.MAX_SAFE_INTEGER, digest: new Uint8Array(32), revoked: Array.from({ length: L.maxRevoked }, (_, i) => id(i)) },
  };
}

describe('TrustStore', () => {
  it('needs 2 pointer blocks and two copies of maxStateBytes: 16 KiB at 4 KiB erase blocks', () => {
    expect(TrustStore.areaSize({ size: 65536, eraseBlockSize: 4096, writeAlignment: 4 })).toBe(16384);
    expect(TrustStore.areaSize({ size: 65536, eraseBlockSize: 2048, writeAlignment: 4 })).toBe(12288);
    expect(TrustStore.areaSize({ size: 65536, eraseBlockSize: 512, writeAlignment: 8 })).toBe(512 * 18);
    expect(TrustStore.areaSize({ size: 65536, eraseBlockSize: 4096, writeAlignment: 4 }, { maxStateBytes: 10000 })).toBe(4096 * 8);
    expect(() => TrustStore.areaSize({ size: 65536, eraseBlockSize: 4096, writeAlignment: 4 }, { maxStateBytes: 1 })).toThrow(/maxStateBytes/);
  });

  it('the largest state the default trust limits allow fits one copy', () => {
    const size = encodeTrustState(largestState()).length;
    expect(size).toBeGreaterThan(3500);
    expect(size).toBeLessThanOrEqual(MAX_TRUST_STATE_BYTES);
  });

  it('reads as not provisioned when erased; keeps what was provisioned and written across reopenings', async () => {
    const { flash, area } = chip();
    expect((await TrustStore.open(flash, area)).state()).toBeUndefined();
    await TrustStore.provision(flash, area, v(1));
    expect((await TrustStore.open(flash, area)).state()).toEqual(v(1));
    const store = await TrustStore.open(flash, area);
    // Enough writes to wrap the pointer log's pages several times.
    for (let n = 2; n <= 40; n++) {
      await store.write(v(n));
      expect(store.state()).toEqual(v(n));
    }
    expect((await TrustStore.open(flash, area)).state()).toEqual(v(40));
    expect(store.stats.writes).toBe(39);
    expect(store.stats.pointer.erases).toBeGreaterThan(2);
  });

  it('writes the copy not in use, so the current one is never touched', async () => {
    const { flash, area } = chip();
    const store = await TrustStore.provision(flash, area, v(1));
    const copy = (i: number): Uint8Array => flash.snapshot().subarray(area.offset + 2 * EBS + i * 8 * EBS, area.offset + 2 * EBS + (i + 1) * 8 * EBS);
    const first = copy(0).slice();
    await store.write(v(2));
    expect(copy(0)).toEqual(first);
    const second = copy(1).slice();
    await store.write(v(3));
    expect(copy(1)).toEqual(second);
  });

  it('a copy that does not match its digest is TRUST_STORE_CORRUPT, never "not provisioned"; a write recovers', async () => {
    const { flash, area } = chip();
    await TrustStore.provision(flash, area, v(1));
    const mem = flash.snapshot();
    mem[area.offset + 2 * EBS + 40] ^= 0x01;
    const bad = new MemoryFlash({ size: flash.size, eraseBlockSize: EBS, writeAlignment: 8, contents: mem });
    const store = await TrustStore.open(bad, area);
    expect(() => store.state()).toThrow(expect.objectContaining({ code: 'TRUST_STORE_CORRUPT' }));
    await store.write(v(5));
    expect((await TrustStore.open(bad, area)).state()).toEqual(v(5));
  });

  it('a pointer of another format, or a copy that does not decode, is TRUST_STORE_CORRUPT', async () => {
    const { flash, area } = chip();
    await TrustStore.provision(flash, area, v(1));
    const log = await RecordLog.open(flash, { offset: area.offset, size: 2 * EBS }, { kind: TRUST_POINTER_KIND, payloadSize: 40 });
    const p = log.latest()!.payload;
    p[0] = 2;
    await log.append(p);
    await expect(TrustStore.open(flash, area).then((s) => s.state())).rejects.toMatchObject({ code: 'TRUST_STORE_CORRUPT' });

    const { flash: f2, area: a2 } = chip();
    await TrustStore.provision(f2, a2, v(1));
    // Copy 1 gets CBOR that hashes right but is no trust state, and the pointer names it.
    const junk = new Uint8Array(16).fill(0xff);
    junk.set(encodeCbor([1, 2, 3]));
    await f2.write(a2.offset + 10 * EBS, junk);
    const log2 = await RecordLog.open(f2, { offset: a2.offset, size: 2 * EBS }, { kind: TRUST_POINTER_KIND, payloadSize: 40 });
    const q = log2.latest()!.payload;
    q[1] = 1;
    new DataView(q.buffer).setUint32(4, 4);
    q.set(sha256(encodeCbor([1, 2, 3])), 8);
    await log2.append(q);
    const s2 = await TrustStore.open(f2, a2);
    expect(() => s2.state()).toThrow(/cannot read/);
    expect(() => s2.state()).toThrow(expect.objectContaining({ code: 'TRUST_STORE_CORRUPT' }));
  });

  it('refuses a state larger than a copy, keeping the old one', async () => {
    const { flash, area } = chip(EBS, { maxStateBytes: 1024 });
    const store = await TrustStore.provision(flash, area, v(1), { maxStateBytes: 1024 });
    const big: TrustState = { ...v(2), anchors: [...v(2).anchors, ...anchors('a2', 'b2', 'community', 'owner2', 'stranger')], source: `coap://${'x'.repeat(200)}.example/` };
    const bigger: TrustState = { ...big, revocation: { sequence: 1, digest: new Uint8Array(32), revoked: Array.from({ length: 20 }, (_, i) => new Uint8Array(32).fill(i)) } };
    await expect(store.write(bigger)).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED' });
    expect((await TrustStore.open(flash, area, { maxStateBytes: 1024 })).state()).toEqual(v(1));
  });

  it('a copy that does not read back as written is IO_ERROR and the old state stays', async () => {
    const { flash, area } = chip();
    await TrustStore.provision(flash, area, v(1));
    // A chip whose cells in copy 1 stick: the first byte of every program lands with a bit cleared.
    const sticky: FlashBackend = {
      size: flash.size,
      eraseBlockSize: flash.eraseBlockSize,
      writeAlignment: flash.writeAlignment,
      read: (o, n) => flash.read(o, n),
      erase: (o, n) => flash.erase(o, n),
      write: (o, d) => (o >= area.offset + 10 * EBS && o < area.offset + 18 * EBS ? flash.write(o, Uint8Array.from(d, (b, i) => (i === 0 ? b & 0xfe : b))) : flash.write(o, d)),
    };
    const store = await TrustStore.open(sticky, area);
    await expect(store.write({ ...v(2), source: 'coap://b.example/' })).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect((await TrustStore.open(flash, area)).state()).toEqual(v(1));
  });

  it('checks its area and the state it is given', async () => {
    const { flash, area } = chip();
    await expect(TrustStore.open(flash, { offset: area.offset, size: area.size - EBS })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(TrustStore.open(flash, { offset: area.offset + 8, size: area.size })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const store = await TrustStore.open(flash, area);
    await expect(store.write({ ...v(1), roles: [{ name: 'r', scope: { kind: 'trust' }, signers: ['nobody'], threshold: 1 }] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(store.state()).toBeUndefined();
    expect(K.owner).toBeDefined();
  });
});
