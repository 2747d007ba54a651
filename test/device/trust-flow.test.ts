/**
 * The device's trust in the update flow: power-on refusals, the refresh
 * before each check (rotation, revocation, owner transfer, the coaps
 * sequence check), writing the store only when something changed, and
 * anti-rollback across an owner transfer.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { applyTrustDocuments } from '../../src/device/trust-apply.js';
import { openDeviceTrust } from '../../src/device/trust-device.js';
import { createOwnerTransfer } from '../../src/suit/owner.js';
import { applyRevocationList, createRevocationList } from '../../src/suit/revocation.js';
import { applyTrustUpdate, createTrustUpdate } from '../../src/suit/trust-update.js';
import { trustStateFromPolicy } from '../../src/suit/trust-verify.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { TrustStore } from '../../src/flash/trust-store.js';
import { anchors, radioRole, trustRoleOf } from '../suit/trust-helpers.js';
import { APP1, FACTORY, K, RADIO1, SECURE_URI, board, deviceState, release, running, serve, stateHex, storedHex, trustEvent, update } from './trust-helpers.js';
import { hex, MemUpdateServer } from './update-helpers.js';

let server: MemUpdateServer;
afterEach(async () => server?.close());

const v1 = deviceState();
const v2set = { ...v1, version: 2, anchors: [...v1.anchors.filter((a) => a.name !== 'a1'), ...anchors('a2')], roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['a2']) : r)) };
const rotation = createTrustUpdate(v2set, [K.a1, K.a2]);
const list1 = createRevocationList({ sequence: 1, revoked: [K.stranger.publicKey] }, [K.t1, K.t2]);
const community = { anchors: anchors('community'), roles: [trustRoleOf(['community'], 1), { name: 'all', scope: { kind: 'any-component' as const }, signers: ['community'], threshold: 1 }] };

describe('power-on', () => {
  it('a device whose trust store was never written refuses every update (TRUST_NOT_PROVISIONED), reported, nothing fetched', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]) });
    const dev = await board(null);
    const r = await update(server, dev, { statusPath: '/status/anon-test' });
    expect(r.status).toMatchObject({ result: 'failed', error: 'TRUST_NOT_PROVISIONED', installedSequence: 1 });
    expect(server.reports.map((x) => x.report.error)).toEqual(['TRUST_NOT_PROVISIONED']);
    expect(server.servedOf('manifest.suit') + server.servedOf('trust/chain')).toBe(0);
    expect(await running(dev)).toEqual(FACTORY);
  });

  it('a damaged trust store refuses every update (TRUST_STORE_CORRUPT) and never falls back to a caller\'s keys', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]) });
    const good = await board();
    // Flip a bit of the copy in use (after the 2-block pointer log): its SHA-256 no longer matches.
    const contents = good.flash.snapshot();
    contents[good.layout.trust!.offset + 2 * good.flash.eraseBlockSize]! ^= 0x01;
    const { size, eraseBlockSize, writeAlignment } = good.flash;
    const dev = { layout: good.layout, flash: new MemoryFlash({ size, eraseBlockSize, writeAlignment, contents }) };
    const r = await update(server, dev);
    expect(r.status).toMatchObject({ result: 'failed', error: 'TRUST_STORE_CORRUPT' });
    expect(server.servedOf('manifest.suit')).toBe(0);
    // A policy from the caller is misuse on a device with a trust store, not a fallback.
    await expect(update(server, dev, { trust: { anchors: [{ publicKey: K.b1.publicKey }] } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a manifest URI on another server than the trust state\'s source is refused (SOURCE_MISMATCH) before anything is fetched', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]) });
    const dev = await board(deviceState('coaps://fw.example.com'));
    const r = await update(server, dev);
    expect(r.status).toMatchObject({ result: 'failed', error: 'SOURCE_MISMATCH' });
    expect(server.servedOf('manifest.suit')).toBe(0);
  });
});

describe('the refresh before each check', () => {
  it('walks a rotation and takes a revocation list in one store write, installs the release of the new key, then writes nothing', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [RADIO1], manifest: release('radio', RADIO1, 10, [K.a2]), chain: [rotation], revocation: list1 });
    const dev = await board();
    const writes = (await TrustStore.open(dev.flash, dev.layout.trust!, { maxStateBytes: 4096 })).stats.writes;
    const r = await update(server, dev);
    expect(r.status).toMatchObject({ result: 'installed', trustVersion: 2, revocationSequence: 1 });
    expect(trustEvent(r.events)).toMatchObject({ version: 2, revocationSequence: 1, applied: [2], written: true });
    const want = applyRevocationList(applyTrustUpdate(v1, rotation), list1).state;
    expect(await storedHex(dev)).toBe(stateHex(want));
    expect(await running(dev)).toEqual([FACTORY[0], hex(sha256(RADIO1))]);
    expect(writes).toBe(0);
    // Next check: the same documents are already held: no write, up to date.
    const ops = dev.flash.ops;
    const again = await update(server, dev);
    expect(again.status).toMatchObject({ result: 'up-to-date', trustVersion: 2 });
    expect(trustEvent(again.events)).toMatchObject({ applied: [], written: false });
    expect(dev.flash.ops).toBe(ops);
  });

  it('plain coap:// never asks for the revocation sequence; over coaps it does, and a device behind it installs nothing (REVOCATION_STALE)', async () => {
    server = new MemUpdateServer();
    const list2 = createRevocationList({ sequence: 2, revoked: [K.stranger.publicKey] }, [K.t1, K.t2]);
    // The server says list 2 exists, but serves list 1 (a lagging mirror, or a freeze attack).
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]), revocation: list1, latestRevocation: 2 });
    const plain = await update(server, await board());
    expect(plain.status.result).toBe('installed');
    expect(server.servedOf('trust/revocation-seq')).toBe(0);
    const dev = await board(deviceState('coaps://10.0.0.1'));
    const stale = await update(server, dev, { manifestUri: SECURE_URI });
    expect(stale.status).toMatchObject({ result: 'failed', error: 'REVOCATION_STALE', revocationSequence: 1 });
    expect(server.servedOf('trust/revocation-seq')).toBe(1);
    expect(await running(dev)).toEqual(FACTORY);
    // The list it took is kept (one write), and with list 2 served the same release installs.
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]), revocation: list2, latestRevocation: 2 });
    expect((await update(server, dev, { manifestUri: SECURE_URI })).status).toMatchObject({ result: 'installed', revocationSequence: 2 });
  });

  it('over coaps a server without the sequence resource, or an unreadable answer, installs nothing', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]) });
    const dev = await board(deviceState('coaps://10.0.0.1'));
    expect((await update(server, dev, { manifestUri: SECURE_URI })).status).toMatchObject({ result: 'failed', error: 'REVOCATION_STALE' });
    server.put('trust/revocation-seq', new TextEncoder().encode('7'));
    expect((await update(server, dev, { manifestUri: SECURE_URI })).status).toMatchObject({ result: 'failed', error: 'REVOCATION_STALE' });
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]), latestRevocation: 0 });
    expect((await update(server, dev, { manifestUri: SECURE_URI })).status).toMatchObject({ result: 'installed' });
  });
});

describe('owner transfer', () => {
  it('installs the new authority from the chain: the old vendors\' keys count for nothing; anti-rollback is kept (a lower sequence is ROLLBACK)', async () => {
    server = new MemUpdateServer();
    const transfer = createOwnerTransfer({ version: 50, trust: community }, K.owner);
    const dev = await board(deviceState(), 20);
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]), chain: [transfer] });
    expect((await update(server, dev)).status).toMatchObject({ result: 'rejected', error: 'UNTRUSTED_KEY', trustVersion: 50, revocationSequence: 0 });
    // The community numbers its first release 1, below the installed 20: refused, the device never goes back.
    serve(server, { images: [APP1], manifest: release('app', APP1, 1, [K.community]), chain: [transfer] });
    expect((await update(server, dev)).status).toMatchObject({ result: 'rejected', error: 'ROLLBACK', installedSequence: 20 });
    serve(server, { images: [APP1], manifest: release('app', APP1, 21, [K.community]), chain: [transfer] });
    expect((await update(server, dev)).status).toMatchObject({ result: 'installed', trustVersion: 50 });
    expect(await running(dev)).toEqual([hex(sha256(APP1)), FACTORY[1]]);
  });

  it('a transfer to a new source: the device stops asking the old server (SOURCE_MISMATCH), at once and at every power-on after', async () => {
    server = new MemUpdateServer();
    const transfer = createOwnerTransfer({ version: 9, trust: community, source: 'coaps://community.example' }, K.owner);
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.community]), chain: [transfer] });
    const dev = await board();
    const r = await update(server, dev);
    expect(r.status).toMatchObject({ result: 'failed', error: 'SOURCE_MISMATCH', trustVersion: 9 });
    const fetched = server.servedOf('manifest.suit');
    expect((await update(server, dev)).status).toMatchObject({ result: 'failed', error: 'SOURCE_MISMATCH' });
    expect(server.servedOf('manifest.suit')).toBe(fetched);
    expect((await openDeviceTrust(dev.flash, dev.layout)).state.source).toBe('coaps://community.example');
  });

  it('handed over directly (the owner\'s own channel): applied and written once; a vendor\'s later trust update cannot undo it', async () => {
    const dev = await board();
    const trust = await openDeviceTrust(dev.flash, dev.layout);
    const transfer = createOwnerTransfer({ version: 7, trust: community }, K.owner);
    const done = await applyTrustDocuments(trust, [transfer, createRevocationList({ sequence: 1, revoked: [K.b1.publicKey] }, [K.community])]);
    expect(done.map((d) => [d.kind, d.version])).toEqual([['owner transfer', 7], ['revocation list', 1]]);
    expect((await openDeviceTrust(dev.flash, dev.layout)).state).toMatchObject({ version: 7, revocation: { sequence: 1 } });
    // The old integrator signs a rotation at version 8 that would restore the old set: its keys are gone.
    const comeback = createTrustUpdate({ ...v1, version: 8 }, [K.t1, K.t2, K.t3]);
    await expect(applyTrustDocuments(trust, [comeback])).rejects.toMatchObject({ code: 'TRUST_THRESHOLD' });
  });

  it('the simple case: a device provisioned from one key (trustStateFromPolicy) updates as before and has no owner to transfer it', async () => {
    server = new MemUpdateServer();
    serve(server, { images: [APP1], manifest: release('app', APP1, 10, [K.b1]), chain: [createOwnerTransfer({ version: 3, trust: community }, K.owner)] });
    const dev = await board(trustStateFromPolicy({ anchors: [{ name: 'oem', publicKey: K.b1.publicKey }] }));
    const r = await update(server, dev);
    expect(trustEvent(r.events)).toMatchObject({ chainError: 'NO_OWNER', version: 0 });
    expect(r.status).toMatchObject({ result: 'installed', trustVersion: 0 });
  });
});
