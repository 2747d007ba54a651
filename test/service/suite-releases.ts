/** Releases, blobs and trust documents: the same tests on every backend. */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/service/store.js';
import { bytes, CLASS, expectCode, outcomes, release, VENDOR } from './fixtures.js';
import { TestClock, type Harness } from './harness.js';

const hex = (b: Uint8Array): string => bytesToHex(sha256(b));

/** Publishing, content addresses, races, trust documents. */
export function releasesSuite(make: () => Harness): void {
  describe('releases and blobs', () => {
    let h: Harness;
    let clock: TestClock;
    let store: Store;
    let url: string;
    beforeEach(async () => {
      h = make();
      clock = new TestClock();
      url = await h.fresh();
      store = await h.open(url, { clock: clock.now, maxBlobBytes: 100_000 });
    });
    afterEach(() => h.cleanup());

    it('stores a release under the content addresses of its bytes and serves slices', async () => {
      const input = release(5, { urgency: 'critical', downtimeS: 30, images: [bytes(5000, 1), bytes(70, 2)] });
      const r = await store.publishRelease(input);
      expect(r).toMatchObject({ classId: CLASS, vendorId: VENDOR, sequence: 5, urgency: 'critical', downtimeS: 30, publishedAt: clock.t, publisher: 'oem' });
      expect(r.envelopeSha256).toBe(hex(input.envelope));
      expect(r.envelopeSize).toBe(300);
      expect(r.images).toEqual([
        { component: 0, sha256: hex(input.images[0]!), size: 5000 },
        { component: 1, sha256: hex(input.images[1]!), size: 70 },
      ]);
      expect(await store.getRelease(CLASS, 5)).toEqual(r);
      const image = input.images[0]!;
      expect(await store.blobSize(r.images[0]!.sha256)).toBe(5000);
      expect(await store.readBlob(r.images[0]!.sha256, 0, 1024)).toEqual(image.subarray(0, 1024));
      expect(await store.readBlob(r.images[0]!.sha256, 4096, 1024)).toEqual(image.subarray(4096, 5000)); // short at the end
      expect(await store.readBlob(r.images[0]!.sha256, 5000, 16)).toEqual(new Uint8Array(0));
      // Reads across the 3 KiB chunks the bytes are stored in, and the whole image at once.
      expect(await store.readBlob(r.images[0]!.sha256, 3000, 1000)).toEqual(image.subarray(3000, 4000));
      expect(await store.readBlob(r.images[0]!.sha256, 1, 4999)).toEqual(image.subarray(1));
      expect(await store.readBlob(r.images[0]!.sha256, 0, 100_000)).toEqual(image);
      expect(await store.readBlob(r.envelopeSha256, 0, 300)).toEqual(input.envelope);
      expect(await store.readBlob('00'.repeat(32), 0, 16)).toBeUndefined();
      expect(await store.blobSize('00'.repeat(32))).toBeUndefined();
    });

    it('orders releases: latest by sequence, list newest first, per class', async () => {
      await store.publishRelease(release(2));
      clock.advance(1000);
      await store.publishRelease(release(9, { images: [] }));
      clock.advance(1000);
      await store.publishRelease(release(4));
      await store.publishRelease(release(1, { classId: '0102' }));
      expect((await store.latestRelease(CLASS))!.sequence).toBe(9);
      expect((await store.latestRelease(CLASS))!.images).toEqual([]);
      expect(await store.latestRelease('0a0b')).toBeUndefined();
      expect((await store.listReleases({ classId: CLASS })).map((r) => r.sequence)).toEqual([4, 9, 2]);
      expect((await store.listReleases({ limit: 2 })).map((r) => `${r.classId}/${r.sequence}`)).toEqual(['0102/1', `${CLASS}/4`]);
      expect((await store.listReleases()).every((r) => r.classId !== CLASS || r.sequence === 9 || r.images.length === 1)).toBe(true);
    });

    it('lets exactly one of two racing publishers have a (class, sequence); the loser leaves no bytes behind', async () => {
      const other = await h.open(url, { clock: clock.now, maxBlobBytes: 100_000 });
      const a = release(7, { images: [bytes(4000, 11)], publisher: 'alice' });
      const b = release(7, { images: [bytes(4000, 12)], envelope: bytes(200, 13), publisher: 'bob' });
      const results = await Promise.allSettled([store.publishRelease(a), other.publishRelease(b)]);
      expect(outcomes(results)).toEqual({ ok: 1, codes: ['ALREADY_EXISTS'] });
      const winner = results[0]!.status === 'fulfilled' ? a : b;
      const loser = winner === a ? b : a;
      const stored = (await store.getRelease(CLASS, 7))!;
      expect(stored.publisher).toBe(winner.publisher);
      expect(stored.images[0]!.sha256).toBe(hex(winner.images[0]!));
      expect(await store.blobSize(hex(loser.images[0]!))).toBeUndefined();
      expect(await store.blobSize(hex(loser.envelope))).toBeUndefined();
      await expectCode(store.publishRelease(release(7)), 'ALREADY_EXISTS');
    });

    it('refuses bad or oversized releases and writes nothing', async () => {
      await expectCode(store.publishRelease(release(1, { images: [bytes(100_001)] })), 'TOO_LARGE');
      await expectCode(store.publishRelease(release(1, { envelope: new Uint8Array(0) })), 'INVALID_ARGUMENT');
      await expectCode(store.publishRelease(release(1, { urgency: 'soon' as never })), 'INVALID_ARGUMENT');
      await expectCode(store.publishRelease(release(-1)), 'INVALID_ARGUMENT');
      await expectCode(store.publishRelease(release(1, { publisher: '' })), 'INVALID_ARGUMENT');
      await expectCode(store.publishRelease(release(1, { images: Array.from({ length: 17 }, (_, i) => bytes(10, i)) })), 'INVALID_ARGUMENT');
      expect(await store.listReleases()).toEqual([]);
      expect(await store.blobSize(hex(release(1).envelope))).toBeUndefined();
    });

    it('keeps trust documents per kind and scope, strictly increasing, walkable from a version', async () => {
      const doc = (version: number, scope = VENDOR) => ({ kind: 'rotation' as const, scope, version, bytes: bytes(64, version), publisher: 'oem' });
      const v1 = await store.publishTrustDocument(doc(1));
      expect(v1).toMatchObject({ kind: 'rotation', scope: VENDOR, version: 1, sha256: hex(bytes(64, 1)), size: 64, publishedAt: clock.t });
      await store.publishTrustDocument(doc(2));
      await store.publishTrustDocument(doc(5));
      await store.publishTrustDocument({ ...doc(1, ''), kind: 'revocation' });
      await expectCode(store.publishTrustDocument(doc(5)), 'ALREADY_EXISTS');
      await expectCode(store.publishTrustDocument(doc(3)), 'CONFLICT');
      expect((await store.listTrustDocuments('rotation', VENDOR, 1)).map((d) => d.version)).toEqual([2, 5]);
      expect((await store.listTrustDocuments('rotation', VENDOR)).map((d) => d.version)).toEqual([1, 2, 5]);
      expect((await store.listTrustDocuments('revocation', '')).map((d) => d.version)).toEqual([1]);
      expect(await store.readBlob(v1.sha256, 0, 64)).toEqual(bytes(64, 1));
    });
  });
}
