/**
 * Envelopes that must install (issue 8, item 7): a manifest with two images
 * (the WG's example 5 shape: two components, each with its own digest and
 * URI) installs both, as one set; an integrated payload (`#name`,
 * draft-ietf-suit-manifest §7.5) is taken from the envelope; the WG's
 * example 3 shape (one component, an image per slot) fetches only the slot
 * the device writes. A hostile two-image envelope is rejected, and then
 * neither image boots.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Journal } from '../../src/flash/journal.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { provisionDevice } from '../../src/device/device.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { hex, image, MemUpdateServer } from './update-helpers.js';
import { A0, A1, B0, B1, board, envelopeOf, example5, imagePath, jsonComponent, powerOn, runningSet, serveSet, updateOnce } from './multi-helpers.js';

let server: MemUpdateServer;
afterEach(async () => server?.close());

const envelopesTried: string[] = [];
/** Envelopes this file offers; one is counted when every check on it passed. */
const ENVELOPES = 5 + 6;
afterAll(() => console.log(JSON.stringify({ test: 'update-multi', envelopesTried: ENVELOPES, failures: ENVELOPES - envelopesTried.length, passed: envelopesTried })));

describe('multi-image and integrated-payload envelopes', () => {
  it("the WG's example 5 shape (two components, two URIs) installs both images as one set, confirmed as one", async () => {
    server = new MemUpdateServer();
    serveSet(server, example5());
    const dev = await board();
    const st = await updateOnce(dev, server);
    expect(st).toMatchObject({ result: 'installed', installedSequence: 1, candidateSequence: 2, blocksFetched: 24 + 12 });
    expect(server.servedOf(imagePath(B0))).toBe(24);
    expect(server.servedOf(imagePath(B1))).toBe(12);
    // Nothing runs yet: the set is swapped in at the next boot, all of it.
    const p = await powerOn(dev.flash, dev.layout);
    expect([p.boot.mode, p.outcome, p.installedSequence]).toEqual(['test', 'confirmed', 2]);
    expect(await runningSet(dev.flash, dev.layout, p)).toBe('B');
    expect(p.boot.state.set).toEqual([0, 1]);
    // The previous set waits in the secondaries; the journal records the set as installed.
    expect(p.boot.state.components.map((c) => hex(c.secondary!.digest))).toEqual([hex(sha256(A0)), hex(sha256(A1))]);
    expect((await Journal.open(dev.flash, dev.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 2 });
    expect((await updateOnce(dev, server)).result).toBe('up-to-date');
    envelopesTried.push('example5-two-images');
  });

  it('a test set that is not confirmed is reverted as a whole', async () => {
    server = new MemUpdateServer();
    serveSet(server, example5());
    const dev = await board();
    expect((await updateOnce(dev, server)).result).toBe('installed');
    const t = await powerOn(dev.flash, dev.layout, { selfTest: () => false });
    expect([t.outcome, await runningSet(dev.flash, dev.layout, t)]).toEqual(['unconfirmed', 'B']);
    const r = await powerOn(dev.flash, dev.layout);
    expect([r.boot.mode, r.outcome, r.installedSequence]).toEqual(['reverted', 'reverted', 1]);
    expect(await runningSet(dev.flash, dev.layout, r)).toBe('A');
    envelopesTried.push('example5-revert');
  });

  it('an integrated payload (#name) is taken from the envelope: nothing is fetched for it', async () => {
    server = new MemUpdateServer();
    // Component 0 from the server, component 1 carried in the envelope.
    const env = envelopeOf(2, [jsonComponent('00', B0, `/${imagePath(B0)}`, { bootable: true }), jsonComponent('01', B1, '#radio.bin')], new Map([['#radio.bin', B1]]));
    serveSet(server, env, [B0]);
    const dev = await board();
    const st = await updateOnce(dev, server, new FakeRuntime(), { maxEnvelopeSize: 64 * 1024 });
    expect(st).toMatchObject({ result: 'installed', blocksFetched: 24 });
    const p = await powerOn(dev.flash, dev.layout);
    expect(await runningSet(dev.flash, dev.layout, p)).toBe('B');
    envelopesTried.push('integrated+fetched');

    // A single-image device and an envelope whose only image is integrated.
    const flash = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096 });
    const layout = createLayout(flash, { slotSize: 28 * 1024 });
    await provisionDevice(flash, layout, A0, 1);
    server.put('manifest.suit', envelopeOf(3, [jsonComponent('00', B0, '#firmware', { bootable: true })], new Map([['#firmware', B0]])));
    const one = await updateOnce({ flash, layout }, server, new FakeRuntime(), { maxEnvelopeSize: 64 * 1024 });
    expect(one).toMatchObject({ result: 'installed', blocksFetched: 0, candidateSequence: 3 });
    const q = await powerOn(flash, layout);
    expect([q.outcome, hex(q.boot.image.digest)]).toEqual(['confirmed', hex(sha256(B0))]);
    envelopesTried.push('integrated-only');
  });

  it("the WG's example 3 shape (one component, an image per slot): only the image for the slot the device writes is fetched", async () => {
    server = new MemUpdateServer();
    const env = envelopeOf(2, [
      jsonComponent('00', B1, `/${imagePath(B1)}`, { slot: 0, bootable: true }),
      jsonComponent('00', B0, `/${imagePath(B0)}`, { slot: 1, bootable: true }),
    ]);
    serveSet(server, env);
    const flash = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096 });
    const layout = createLayout(flash, { slotSize: 28 * 1024 });
    await provisionDevice(flash, layout, A0, 1);
    expect(await updateOnce({ flash, layout }, server)).toMatchObject({ result: 'installed', blocksFetched: 24 });
    expect(server.servedOf(imagePath(B1))).toBe(0);
    expect(hex((await powerOn(flash, layout)).boot.image.digest)).toBe(hex(sha256(B0)));
    envelopesTried.push('example3-slots');
  });

  const hostile: [string, () => { env: Uint8Array; images?: Uint8Array[] }, string, number][] = [
    // what, envelope, error, image blocks served
    ['the second image does not match its digest', () => ({ env: example5(2, B0, B1), images: [B0, image(B1.length, 99)] }), 'DIGEST_MISMATCH', 36],
    ['the second image is endless', () => ({ env: envelopeOf(2, [jsonComponent('00', B0, `/${imagePath(B0)}`), { ...jsonComponent('01', B1, `/${imagePath(B1)}`), 'install-size': 2048 }]) }), 'TOO_LARGE', 27],
    ['an integrated payload the envelope does not carry', () => ({ env: envelopeOf(2, [jsonComponent('00', B0, `/${imagePath(B0)}`), jsonComponent('01', B1, '#missing')]) }), 'SUIT_MALFORMED', 0],
    ['a component this device does not have', () => ({ env: envelopeOf(2, [jsonComponent('00', B0, `/${imagePath(B0)}`), jsonComponent('07', B1, `/${imagePath(B1)}`)]) }), 'SUIT_UNSUPPORTED', 0],
    ['an image too large for its slot', () => ({ env: example5(2, B0, image(17 * 1024, 5)) }), 'IMAGE_TOO_LARGE', 0],
    ['an image URI this device cannot fetch', () => ({ env: envelopeOf(2, [jsonComponent('00', B0, 'http://example.com/file1.bin'), jsonComponent('01', B1, `/${imagePath(B1)}`)]) }), 'SUIT_UNSUPPORTED', 0],
  ];
  for (const [what, make, code, served] of hostile) {
    it(`a two-image envelope where ${what} is rejected (${code}); neither image boots`, async () => {
      server = new MemUpdateServer();
      const { env, images } = make();
      serveSet(server, env, images ?? [B0, B1]);
      if (images) server.put(imagePath(B1), images[1]!); // the server lies about B1
      const dev = await board();
      const st = await updateOnce(dev, server);
      expect(st).toMatchObject({ result: 'rejected', error: code, installedSequence: 1 });
      const total = server.servedOf(imagePath(B0)) + server.servedOf(imagePath(B1));
      expect(total).toBeLessThanOrEqual(served);
      if (served === 0) expect(total).toBe(0);
      const p = await powerOn(dev.flash, dev.layout);
      expect([p.boot.mode, p.boot.actions]).toEqual(['confirmed', []]);
      expect(await runningSet(dev.flash, dev.layout, p)).toBe('A');
      expect((await Journal.open(dev.flash, dev.layout)).latest()).toMatchObject({ phase: 'idle', installedSeq: 1 });
      envelopesTried.push(`hostile:${code}`);
    });
  }
});
