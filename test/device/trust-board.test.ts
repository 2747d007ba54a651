/**
 * A multi-vendor board end to end: an application [00] whose vendor B signs
 * it and a radio [01] whose vendor A signs it, each key only for its own
 * component, on one device with one trust store; releases of one component
 * or of both in one manifest (installed as one set); a vendor rotating its
 * own key without the other vendor or the integrator.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createTrustUpdate } from '../../src/suit/trust-update.js';
import { anchors, appRole } from '../suit/trust-helpers.js';
import { APP1, FACTORY, K, RADIO1, board, boardRelease, deviceState, release, running, serve, update } from './trust-helpers.js';
import { hex, image, MemUpdateServer } from './update-helpers.js';

let server: MemUpdateServer;
afterEach(async () => server?.close());

const APP2 = image(7_000, 41);
const RADIO2 = image(2_500, 42);
const h = (b: Uint8Array): string => hex(sha256(b));

describe('multi-vendor board', () => {
  it('each vendor updates its own component; neither can sign for the other; a release of both needs both', async () => {
    server = new MemUpdateServer();
    const dev = await board();
    serve(server, { images: [RADIO1], manifest: release('radio', RADIO1, 2, [K.a1]) });
    expect((await update(server, dev)).status).toMatchObject({ result: 'installed', candidateSequence: 2 });
    expect(await running(dev)).toEqual([FACTORY[0], h(RADIO1)]);

    serve(server, { images: [APP1], manifest: release('app', APP1, 3, [K.b1]) });
    expect((await update(server, dev)).status).toMatchObject({ result: 'installed', candidateSequence: 3 });
    expect(await running(dev)).toEqual([h(APP1), h(RADIO1)]);

    // Vendor B signs a radio image, vendor A an application image: each refused.
    for (const manifest of [release('radio', RADIO2, 4, [K.b1]), release('app', APP2, 4, [K.a1])]) {
      serve(server, { images: [APP2, RADIO2], manifest });
      expect((await update(server, dev)).status).toMatchObject({ result: 'rejected', error: 'KEY_NOT_AUTHORIZED' });
    }
    // One manifest for both: vendor A alone does not satisfy the application's role; both do.
    serve(server, { images: [APP2, RADIO2], manifest: boardRelease(4, APP2, RADIO2, [K.a1]) });
    expect((await update(server, dev)).status).toMatchObject({ result: 'rejected', error: 'KEY_NOT_AUTHORIZED' });
    expect(await running(dev)).toEqual([h(APP1), h(RADIO1)]);
    serve(server, { images: [APP2, RADIO2], manifest: boardRelease(4, APP2, RADIO2, [K.a1, K.b1]) });
    expect((await update(server, dev)).status).toMatchObject({ result: 'installed', candidateSequence: 4 });
    expect(await running(dev)).toEqual([h(APP2), h(RADIO2)]);
  });

  it('vendor B rotates its key alone (old and new key sign); the radio is untouched, b1 then counts for nothing', async () => {
    server = new MemUpdateServer();
    const v1 = deviceState();
    const v2 = { ...v1, version: 2, anchors: [...v1.anchors.filter((a) => a.name !== 'b1'), ...anchors('b2')], roles: v1.roles.map((r) => (r.name === 'app' ? appRole(['b2']) : r)) };
    const rotation = createTrustUpdate(v2, [K.b1, K.b2]);
    const dev = await board();
    serve(server, { images: [APP1], manifest: release('app', APP1, 2, [K.b1]), chain: [rotation] });
    expect((await update(server, dev)).status).toMatchObject({ result: 'rejected', error: 'UNTRUSTED_KEY', trustVersion: 2 });
    serve(server, { images: [APP1], manifest: release('app', APP1, 2, [K.b2]), chain: [rotation] });
    expect((await update(server, dev)).status).toMatchObject({ result: 'installed', trustVersion: 2 });
    expect(await running(dev)).toEqual([h(APP1), FACTORY[1]]); // the reboot into the new set
    serve(server, { images: [RADIO1], manifest: release('radio', RADIO1, 3, [K.a1]), chain: [rotation] });
    expect((await update(server, dev)).status).toMatchObject({ result: 'installed', trustVersion: 2 });
    expect(await running(dev)).toEqual([h(APP1), h(RADIO1)]);
  });
});
