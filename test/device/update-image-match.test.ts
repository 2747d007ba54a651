/**
 * The updater checks the slot against the manifest's image-match conditions
 * after the fetch (draft-ietf-suit-manifest-37 §8.4.9.2), not against the
 * digest/size parameters in effect at the fetch directive. Envelopes are
 * built with the suit encoder, in the shape of createEnvelope's manifest
 * with the parameters moved around.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { ALG, CONDITION, DIRECTIVE } from '../../src/suit/constants.js';
import { createSignedEnvelope } from '../../src/suit/encode.js';
import type { SuitCommand, SuitParameters } from '../../src/suit/types.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { CLASS, hex, image, KEY, MANIFEST_URI, MemUpdateServer, TRUST, VENDOR } from './update-helpers.js';

const A = image(9000, 1);
const B = image(6000, 2);
const C = image(7000, 3);

const cond = (code: number): SuitCommand => ({ kind: 'condition', code, policy: 15 });
const fetch: SuitCommand = { kind: 'directive', code: DIRECTIVE.fetch, policy: 2 };
const set = (params: SuitParameters): SuitCommand => ({ kind: 'override-parameters', params });
const digestOf = (img: Uint8Array): { alg: number; bytes: Uint8Array } => ({ alg: ALG.sha256, bytes: sha256(img) });
const uriOf = (img: Uint8Array): string => `coap://10.0.0.1/fw/sha256/${hex(sha256(img))}`;

/** A signed envelope: vendor/class in the shared sequence (plus `shared`), then `install`. */
function envelope(sequence: number, shared: SuitParameters, install: SuitCommand[]): Uint8Array {
  return createSignedEnvelope(
    {
      version: 1,
      sequenceNumber: BigInt(sequence),
      components: [[new Uint8Array([0])]],
      sharedSequence: [set({ vendorId: VENDOR, classId: CLASS, ...shared }), cond(CONDITION.vendorId), cond(CONDITION.classId)],
      install,
    },
    [KEY],
  );
}

let server: MemUpdateServer;
afterEach(async () => server?.close());

/** Serve the images and `env`, run one update on a device running A (sequence 1). */
async function offer(env: Uint8Array, images: Uint8Array[]) {
  server = new MemUpdateServer();
  for (const img of images) server.put(`fw/sha256/${hex(sha256(img))}`, img);
  server.put('manifest.suit', env);
  const flash = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 28 * 1024 });
  await provisionDevice(flash, layout, A, 1);
  const runtime = new FakeRuntime();
  const c = server.client(runtime);
  const status = await runUpdate({ flash, layout, request: c.request, manifestUri: MANIFEST_URI, runtime, trust: TRUST, vendorId: VENDOR, classId: CLASS }).finally(() => c.close());
  const p = await powerOn(flash, layout);
  return { status, running: hex(p.boot.image.digest), servedOf: (img: Uint8Array) => server.servedOf(`fw/sha256/${hex(sha256(img))}`) };
}

describe('image-match checks decide what the slot must hold', () => {
  it('digest and size set after the fetch, then image-match: installs', async () => {
    const env = envelope(2, {}, [set({ uri: uriOf(B) }), fetch, set({ imageDigest: digestOf(B), imageSize: B.length }), cond(CONDITION.imageMatch)]);
    const r = await offer(env, [B]);
    expect(r.status).toMatchObject({ result: 'installed', candidateSequence: 2 });
    expect(r.running).toBe(hex(sha256(B)));
  });

  it('an image-match digest differing from the fetch-time digest: the image-match one is the one checked', async () => {
    // Fetch-time parameters name C; the image-match after the fetch names B, which the uri serves.
    const good = envelope(2, { imageDigest: digestOf(C), imageSize: C.length }, [
      set({ uri: uriOf(B) }), fetch, set({ imageDigest: digestOf(B), imageSize: B.length }), cond(CONDITION.imageMatch),
    ]);
    const r = await offer(good, [B, C]);
    expect(r.status).toMatchObject({ result: 'installed' });
    expect(r.running).toBe(hex(sha256(B)));
    expect(r.servedOf(C)).toBe(0);

    // The other way round: fetch-time names B (what is served), image-match names C: refused, A stays.
    const bad = envelope(2, { imageDigest: digestOf(B), imageSize: B.length }, [
      set({ uri: uriOf(B) }), fetch, set({ imageDigest: digestOf(C), imageSize: B.length }), cond(CONDITION.imageMatch),
    ]);
    const r2 = await offer(bad, [B, C]);
    expect(r2.status).toMatchObject({ result: 'rejected', error: 'DIGEST_MISMATCH' });
    expect(r2.running).toBe(hex(sha256(A)));
  });

  it('the size the checks state is the endless-data cut-off, whatever the fetch-time size says', async () => {
    // Fetch-time size claims the full image; the image-match says 2048 bytes: the download stops there.
    const env = envelope(2, { imageDigest: digestOf(B), imageSize: B.length }, [
      set({ uri: uriOf(B) }), fetch, set({ imageSize: 2048 }), cond(CONDITION.imageMatch),
    ]);
    const r = await offer(env, [B]);
    expect(r.status).toMatchObject({ result: 'rejected', error: 'TOO_LARGE' });
    expect(r.servedOf(B)).toBeLessThanOrEqual(3);
    expect(r.running).toBe(hex(sha256(A)));
  });

  it('several agreeing image-match checks install; disagreeing ones are refused before any download', async () => {
    const twice = envelope(2, { imageDigest: digestOf(B), imageSize: B.length }, [
      set({ uri: uriOf(B) }), fetch, cond(CONDITION.imageMatch), cond(CONDITION.imageMatch),
    ]);
    expect((await offer(twice, [B])).status.result).toBe('installed');

    const disagree = envelope(2, { imageDigest: digestOf(B), imageSize: B.length }, [
      set({ uri: uriOf(B) }), fetch, cond(CONDITION.imageMatch), set({ imageDigest: digestOf(C) }), cond(CONDITION.imageMatch),
    ]);
    const r = await offer(disagree, [B, C]);
    expect(r.status).toMatchObject({ result: 'rejected', error: 'CONDITION_FAILED' });
    expect(r.servedOf(B)).toBe(0);
    expect(r.running).toBe(hex(sha256(A)));
  });

  it('a fetch with no image-match after it, or one without a size, is refused before any download', async () => {
    const unchecked = envelope(2, { imageDigest: digestOf(B), imageSize: B.length }, [set({ uri: uriOf(B) }), fetch]);
    const r = await offer(unchecked, [B]);
    expect(r.status).toMatchObject({ result: 'rejected', error: 'SUIT_UNSUPPORTED', message: expect.stringMatching(/image-match/) });
    expect(r.servedOf(B)).toBe(0);

    const sizeless = envelope(2, { imageDigest: digestOf(B) }, [set({ uri: uriOf(B) }), fetch, cond(CONDITION.imageMatch)]);
    const r2 = await offer(sizeless, [B]);
    expect(r2.status).toMatchObject({ result: 'rejected', error: 'SUIT_UNSUPPORTED', message: expect.stringMatching(/size/) });
    expect(r2.servedOf(B)).toBe(0);
  });
});
