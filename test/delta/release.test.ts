/** buildRelease: every blob under its content address, the envelope naming them, the delta offered before the full image. */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { describe, expect, it } from 'vitest';
import { applyDelta } from '../../src/delta/image.js';
import { buildRelease } from '../../src/delta/release.js';
import { BlockVerifier } from '../../src/suit/block-verifier.js';
import { findDeltaAlternative } from '../../src/suit/delta-manifest.js';
import { privateKeyFromSecret } from '../../src/suit/keys.js';
import { planUpdate } from '../../src/suit/plan.js';
import { verifyEnvelope } from '../../src/suit/verify.js';
import { toyExecutable } from './helpers.js';

const key = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(4));
const trust = { anchors: [{ name: 'k', publicKey: key.publicKey }] };
const OLD = toyExecutable(30_000, 3);
const NEW = toyExecutable(30_000, 3, 1, 10_000, 64);
const ids = { vendorId: new Uint8Array(16).fill(1), classId: new Uint8Array(16).fill(2) };

describe('buildRelease', () => {
  it('with --delta-from: image, its digests, delta, its digests, each at /fw/sha256/<its sha256>, all named by the signed manifest', async () => {
    const r = buildRelease({ ...ids, sequence: 9, image: NEW, deltaFrom: OLD, frameSize: 2048 }, [key]);
    expect(r.blobs.map((b) => b.role)).toEqual(['image', 'image-digests', 'delta', 'delta-digests']);
    for (const b of r.blobs) expect(b.uri).toBe(`/fw/sha256/${bytesToHex(sha256(b.bytes))}`);
    const by = (role: string) => r.blobs.find((b) => b.role === role)!;
    const m = verifyEnvelope(r.envelope, { trust }).manifest;
    const alt = findDeltaAlternative(m)!;
    expect(alt.delta).toMatchObject({ uri: by('delta').uri, size: by('delta').bytes.length, frameSize: 2048 });
    expect(alt.delta.blockDigests!.uri).toBe(by('delta-digests').uri);
    expect(alt.target.blockDigests!.uri).toBe(by('image-digests').uri);
    expect(alt.source).toMatchObject({ digest: { bytes: sha256(OLD) }, size: OLD.length });
    // The digest lists are the ones the roots sign.
    new BlockVerifier(alt.target.blockDigests!).acceptResource(by('image-digests').bytes);
    new BlockVerifier(alt.delta.blockDigests!).acceptResource(by('delta-digests').bytes);
    expect(bytesToHex((await applyDelta(by('delta').bytes, OLD)).target)).toBe(bytesToHex(NEW));
    expect(r.deltaRatio).toBeCloseTo(by('delta').bytes.length / NEW.length);
    // The full image stays the fallback.
    const full = planUpdate(m, { installed: () => null }).images;
    expect(full.map((i) => [i.action, i.uri])).toEqual([['fetch', by('image').uri]]);
  });

  it('without a predecessor: no delta; blockSize 0: no digests', () => {
    expect(buildRelease({ ...ids, sequence: 1, image: NEW }, [key]).blobs.map((b) => b.role)).toEqual(['image', 'image-digests']);
    const bare = buildRelease({ ...ids, sequence: 1, image: NEW, blockSize: 0 }, [key]);
    expect(bare.blobs.map((b) => b.role)).toEqual(['image']);
    expect(planUpdate(verifyEnvelope(bare.envelope, { trust }).manifest, {}).images[0]!.blockDigests).toBeUndefined();
    expect(() => buildRelease({ ...ids, sequence: 1, image: 'x' as unknown as Uint8Array }, [key])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
