/**
 * The TUF-style attacks of issue 14 against the whole device (trust store on
 * flash, update client, boot): each is refused with a typed error, the
 * running images stay, and the trust store holds what the device verified,
 * never what the attacker offered. The suit-level versions of these attacks
 * are in test/suit/trust-attacks.test.ts.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { openDeviceTrust } from '../../src/device/trust-device.js';
import { applyTrustDocuments } from '../../src/device/trust-apply.js';
import { createOwnerTransfer } from '../../src/suit/owner.js';
import { applyRevocationList, createRevocationList } from '../../src/suit/revocation.js';
import { applyTrustUpdate, createTrustUpdate } from '../../src/suit/trust-update.js';
import type { TrustSet } from '../../src/suit/trust-set.js';
import { anchors, radioRole, trustRoleOf } from '../suit/trust-helpers.js';
import { APP1, FACTORY, K, RADIO1, board, deviceState, release, running, serve, stateHex, storedHex, trustEvent, update } from './trust-helpers.js';
import { hex, MemUpdateServer } from './update-helpers.js';

let server: MemUpdateServer;
afterEach(async () => server?.close());

const v1 = deviceState();
/** Vendor A rotates the radio key: a1 out, a2 in, signed by both (its own role, no one else). */
const v2set: TrustSet = {
  ...v1,
  version: 2,
  anchors: [...v1.anchors.filter((a) => a.name !== 'a1'), ...anchors('a2')],
  roles: v1.roles.map((r) => (r.name === 'radio' ? radioRole(['a2']) : r)),
};
const rotation = createTrustUpdate(v2set, [K.a1, K.a2]);
const v2 = applyTrustUpdate(v1, rotation);
/** The integrator revokes vendor B's key (2 of 3 of the trust role). */
const revokeB1 = createRevocationList({ sequence: 2, revoked: [K.b1.publicKey] }, [K.t1, K.t3]);
const olderList = createRevocationList({ sequence: 1, revoked: [K.stranger.publicKey] }, [K.t1, K.t3]);

async function offered(offer: Parameters<typeof serve>[1], state = v1) {
  server = new MemUpdateServer();
  serve(server, offer);
  const dev = await board(state);
  const r = await update(server, dev);
  return { ...r, dev, run: await running(dev), stored: await storedHex(dev) };
}

describe('device-level trust attacks: refused, the running images kept', () => {
  it('an envelope signed by a rotated-out key (the device walked the rotation first): UNTRUSTED_KEY', async () => {
    const r = await offered({ images: [RADIO1], manifest: release('radio', RADIO1, 10, [K.a1]), chain: [rotation] });
    expect(r.status).toMatchObject({ result: 'rejected', error: 'UNTRUSTED_KEY', trustVersion: 2 });
    expect(r.run).toEqual(FACTORY);
    expect(r.stored).toBe(stateHex(v2));
    expect(server.servedOf(`fw/sha256/${hex(sha256(RADIO1))}`)).toBe(0); // refused before any image block
  });

  it('an envelope signed by a revoked key: KEY_REVOKED', async () => {
    const r = await offered({ images: [APP1], manifest: release('app', APP1, 10, [K.b1]), revocation: revokeB1 });
    expect(r.status).toMatchObject({ result: 'rejected', error: 'KEY_REVOKED', revocationSequence: 2 });
    expect(r.run).toEqual(FACTORY);
    expect(r.stored).toBe(stateHex(applyRevocationList(v1, revokeB1).state));
  });

  it("another vendor's key for a component it does not own: KEY_NOT_AUTHORIZED, also when the manifest claims that vendor's id", async () => {
    for (const vendor of [undefined, (await import('./trust-helpers.js')).VENDOR_B]) {
      const r = await offered({ images: [RADIO1], manifest: release('radio', RADIO1, 10, [K.b1], vendor) });
      expect(r.status, String(vendor)).toMatchObject({ result: 'rejected', error: 'KEY_NOT_AUTHORIZED' });
      expect(r.run).toEqual(FACTORY);
      expect(r.stored).toBe(stateHex(v1));
    }
  });

  const badUpdates: [string, Uint8Array, string][] = [
    ['signed only by the new key', createTrustUpdate(v2set, [K.a2]), 'TRUST_THRESHOLD'],
    ['signed only by the old key', createTrustUpdate(v2set, [K.a1]), 'TRUST_THRESHOLD'],
    ['skipping a version', createTrustUpdate({ ...v2set, version: 3 }, [K.a1, K.a2]), 'TRUST_VERSION_GAP'],
  ];
  for (const [what, doc, code] of badUpdates) {
    it(`a trust update ${what}: refused (${code}), the store unchanged, the release of the new key refused`, async () => {
      const r = await offered({ images: [RADIO1], manifest: release('radio', RADIO1, 10, [K.a2]), chain: [doc] });
      expect(trustEvent(r.events)).toMatchObject({ chainError: code, version: 1, written: false });
      expect(r.status).toMatchObject({ result: 'rejected', error: 'UNTRUSTED_KEY', trustVersion: 1 });
      expect(r.run).toEqual(FACTORY);
      expect(r.stored).toBe(stateHex(v1));
    });
  }

  it('a trust update with a lower version: never applied (the chain skips it; handed over directly: TRUST_ROLLBACK)', async () => {
    // The device is at version 3 (the radio back on a1); the attacker replays version 2, which trusted a2.
    const v3 = applyTrustUpdate(v2, createTrustUpdate({ ...v2set, version: 3, anchors: [...v2set.anchors, ...anchors('a1')], roles: v1.roles }, [K.a2, K.a1]));
    const r = await offered({ images: [RADIO1], manifest: release('radio', RADIO1, 10, [K.a2]), chain: [rotation] }, v3);
    expect(r.status).toMatchObject({ result: 'rejected', error: 'KEY_NOT_AUTHORIZED', trustVersion: 3 });
    expect(r.stored).toBe(stateHex(v3));
    const trust = await openDeviceTrust(r.dev.flash, r.dev.layout);
    await expect(applyTrustDocuments(trust, [rotation])).rejects.toMatchObject({ code: 'TRUST_ROLLBACK' });
    expect(await storedHex(r.dev)).toBe(stateHex(v3));
  });

  it('a replayed older revocation list: REVOCATION_ROLLBACK, the newer list kept, the revoked key still refused', async () => {
    const held = applyRevocationList(v1, revokeB1).state;
    const r = await offered({ images: [APP1], manifest: release('app', APP1, 10, [K.b1]), revocation: olderList }, held);
    expect(trustEvent(r.events)).toMatchObject({ revocationError: 'REVOCATION_ROLLBACK', revocationSequence: 2, written: false });
    expect(r.status).toMatchObject({ result: 'rejected', error: 'KEY_REVOKED' });
    expect(r.run).toEqual(FACTORY);
    expect(r.stored).toBe(stateHex(held));
  });

  it('mix and match: the rotation with an old manifest of the old key, or the new manifest without the rotation', async () => {
    const old = await offered({ images: [RADIO1], manifest: release('radio', RADIO1, 10, [K.a1]), chain: [rotation] });
    expect(old.status).toMatchObject({ result: 'rejected', error: 'UNTRUSTED_KEY' });
    const withheld = await offered({ images: [RADIO1], manifest: release('radio', RADIO1, 10, [K.a2]) });
    expect(withheld.status).toMatchObject({ result: 'rejected', error: 'UNTRUSTED_KEY', trustVersion: 1 });
    for (const r of [old, withheld]) expect(r.run).toEqual(FACTORY);
  });

  it('a transfer of authority signed by anyone but the owner: NOT_OWNER, from the chain or handed over directly', async () => {
    const community = { anchors: anchors('community'), roles: [trustRoleOf(['community'], 1), { name: 'all', scope: { kind: 'any-component' as const }, signers: ['community'], threshold: 1 }] };
    for (const signer of [K.stranger, K.t1, K.a1]) {
      const transfer = createOwnerTransfer({ version: 50, trust: community }, signer);
      const r = await offered({ images: [APP1], manifest: release('app', APP1, 10, [K.community]), chain: [transfer] });
      expect(trustEvent(r.events)).toMatchObject({ chainError: 'NOT_OWNER', version: 1 });
      expect(r.status).toMatchObject({ result: 'rejected', error: 'UNTRUSTED_KEY' });
      expect(r.run).toEqual(FACTORY);
      expect(r.stored).toBe(stateHex(v1));
      await expect(applyTrustDocuments(await openDeviceTrust(r.dev.flash, r.dev.layout), [transfer])).rejects.toMatchObject({ code: 'NOT_OWNER' });
    }
  });
});
