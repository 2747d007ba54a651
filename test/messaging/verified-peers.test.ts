import { describe, expect, it } from 'vitest';
import { resolveAmplification, VerifiedPeers } from '../../src/messaging/verified.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';

const A = { address: '127.0.0.1', port: 1 };
const B = { address: '127.0.0.1', port: 2 };
const C = { address: '127.0.0.1', port: 3 };
const LIFETIME = 80_000;

function table(max: number): { rt: FakeRuntime; peers: VerifiedPeers } {
  const rt = new FakeRuntime();
  return { rt, peers: new VerifiedPeers(rt, resolveAmplification({ maxVerifiedPeers: max, verifiedLifetimeMs: LIFETIME })) };
}

describe('VerifiedPeers', () => {
  it('forgets an address a lifetime after it was last renewed', () => {
    const { rt, peers } = table(10);
    peers.add(A);
    rt.advance(LIFETIME / 2);
    peers.add(A); // an eighth of the lifetime has passed: renewed
    rt.advance(LIFETIME * 0.9);
    expect(peers.has(A)).toBe(true);
    rt.advance(LIFETIME * 0.2);
    expect(peers.has(A)).toBe(false);
  });

  it('drops the least recently renewed address when full', () => {
    const { rt, peers } = table(2);
    peers.add(A);
    rt.advance(LIFETIME / 4);
    peers.add(B);
    rt.advance(LIFETIME / 4);
    peers.add(A); // renewed: B is now the oldest
    peers.add(C);
    expect([peers.has(A), peers.has(B), peers.has(C)]).toEqual([true, false, true]);
  });

  it('does not reorder for renewals within an eighth of the lifetime (one per datagram of a flow)', () => {
    const { rt, peers } = table(2);
    peers.add(A);
    peers.add(B);
    rt.advance(LIFETIME / 16);
    peers.add(A); // a moment later: keeps its place and its expiry
    peers.add(C);
    expect([peers.has(A), peers.has(B), peers.has(C)]).toEqual([false, true, true]);
    expect(peers.size).toBe(2);
  });
});
