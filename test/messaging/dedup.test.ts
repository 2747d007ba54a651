import { describe, expect, it } from 'vitest';
import { DedupCache } from '../../src/messaging/dedup.js';
import { isCoapfwError } from '../../src/errors.js';

describe('DedupCache (RFC 7252 §4.5)', () => {
  it('finds an exchange by peer and message ID, and keeps peers apart', () => {
    const d = new DedupCache(16, 1000);
    const a = d.add('10.0.0.1:5683', 7, 0);
    a.response = Uint8Array.of(1);
    expect(d.get('10.0.0.1:5683', 7, 1)?.response).toEqual(Uint8Array.of(1));
    expect(d.get('10.0.0.2:5683', 7, 1)).toBeUndefined();
    expect(d.get('10.0.0.1:5683', 8, 1)).toBeUndefined();
    const b = d.add('10.0.0.2:5683', 7, 2);
    b.response = Uint8Array.of(2);
    expect(d.get('10.0.0.1:5683', 7, 3)?.response).toEqual(Uint8Array.of(1));
    expect(d.get('10.0.0.2:5683', 7, 3)?.response).toEqual(Uint8Array.of(2));
    expect(d.size).toBe(2);
  });

  it('forgets an exchange after its lifetime, and a reused ID starts a new one', () => {
    const d = new DedupCache(16, 1000);
    d.add('p', 1, 0).response = Uint8Array.of(1);
    expect(d.get('p', 1, 999)).toBeDefined();
    expect(d.get('p', 1, 1000)).toBeUndefined();
    const again = d.add('p', 1, 1000);
    expect(again.response).toBeUndefined();
    expect(d.get('p', 1, 1001)).toBe(again);
    // The expired entry was swept, not kept beside the new one.
    expect(d.size).toBe(1);
  });

  it('holds at most maxEntries, evicting the oldest first', () => {
    const d = new DedupCache(4, 1_000_000);
    for (let mid = 0; mid < 10; mid++) d.add(`peer${mid % 3}`, mid, mid);
    expect(d.size).toBe(4);
    expect(d.evictions).toBe(6);
    for (let mid = 0; mid < 6; mid++) expect(d.get(`peer${mid % 3}`, mid, 20)).toBeUndefined();
    for (let mid = 6; mid < 10; mid++) expect(d.get(`peer${mid % 3}`, mid, 20)).toBeDefined();
  });

  it('stays bounded under a flood of distinct peers and IDs, wrapping its ring many times', () => {
    const d = new DedupCache(100, 50);
    for (let i = 0; i < 10_000; i++) {
      d.add(`peer${i % 37}`, i & 0xffff, i);
      expect(d.size).toBeLessThanOrEqual(50);
    }
    // Only the last lifetime's worth is remembered.
    expect(d.get('peer9', 9999 & 0xffff, 9999)).toBeDefined();
    expect(d.get(`peer${9940 % 37}`, 9940, 9999)).toBeUndefined();
  });

  it('rejects a cap below 1 with a labelled error', () => {
    expect(() => new DedupCache(0, 1)).toThrow(/maxDedupEntries must be an integer >= 1, got 0/);
    expect(() => new DedupCache(8, 1, 0)).toThrow(/maxReplayableResponses must be an integer >= 1, got 0/);
    let error: unknown;
    try {
      new DedupCache(1.5, 1);
    } catch (e) {
      error = e;
    }
    expect(isCoapfwError(error, 'INVALID_ARGUMENT')).toBe(true);
  });
});

describe('replayable responses', () => {
  it('keeps the newest N replayable responses; older ones are let go and marked to be processed again; others stay', () => {
    const d = new DedupCache(16, 1_000_000, 2);
    const bytes = (n: number) => new Uint8Array([n]);
    const [a, b, c, post] = [1, 2, 3, 4].map((mid) => d.add('p', mid, 0));
    d.keep(post!, bytes(4), false);
    d.keep(a!, bytes(1), true);
    d.keep(b!, bytes(2), true);
    expect([a!.response, a!.reprocess]).toEqual([bytes(1), false]);
    d.keep(c!, bytes(3), true);
    expect([a!.response, a!.reprocess]).toEqual([undefined, true]);
    expect([b!.response, c!.response, post!.response]).toEqual([bytes(2), bytes(3), bytes(4)]);
    expect(d.get('p', 1, 1)).toBe(a); // the entry itself stays: a duplicate is still recognised
  });
});
