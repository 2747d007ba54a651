import { describe, expect, it } from 'vitest';
import { CongestionTable } from '../../src/messaging/congestion-table.js';
import { CongestionController } from '../../src/messaging/congestion.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';

/** Send `n` new packets numbered from `from`. */
const sendN = (c: CongestionController, from: number, n: number): number[] => {
  const ids = Array.from({ length: n }, (_, i) => from + i);
  for (const id of ids) c.onSent(id);
  return ids;
};

describe('CongestionController', () => {
  it('sends no more than the initial window before an RTT sample (RFC 8085 §3.1.3)', () => {
    const rt = new FakeRuntime();
    const c = new CongestionController(rt, { initialWindow: 10 });
    expect(c.allowance()).toBe(10);
    sendN(c, 0, 10);
    expect(c.allowance()).toBe(0);
    expect(c.pacingIntervalMs()).toBe(0);
    expect(c.probeTimeoutMs()).toBe(2000);
  });

  it('estimates RTT as RFC 6298 §2 does, without samples from packets sent twice (Karn)', () => {
    const rt = new FakeRuntime();
    const c = new CongestionController(rt);
    c.onSent(1);
    rt.advance(100);
    c.onDelivered(1);
    expect(c.srtt).toBe(100);
    expect(c.probeTimeoutMs()).toBe(100 + 4 * 50);
    c.onSent(2);
    rt.advance(200);
    c.onDelivered(2);
    expect(c.srtt).toBeCloseTo(0.875 * 100 + 0.125 * 200);
    c.onSent(3, true);
    rt.advance(5000);
    c.onDelivered(3);
    expect(c.srtt).toBeCloseTo(112.5);
  });

  it('fills a clean path: the window doubles every RTT in slow start', () => {
    const rt = new FakeRuntime();
    const c = new CongestionController(rt, { maxWindow: 1000 });
    let next = 0;
    const windows: number[] = [];
    for (let round = 0; round < 5; round++) {
      const ids = sendN(c, next, c.allowance());
      next += ids.length;
      rt.advance(20);
      for (const id of ids) c.onDelivered(id);
      windows.push(c.window);
    }
    expect(windows).toEqual([20, 40, 80, 160, 320]);
  });

  it('detects a hole from 3 later arrivals at once and halves the window once per loss episode', () => {
    const rt = new FakeRuntime();
    const c = new CongestionController(rt, { initialWindow: 20 });
    sendN(c, 0, 20);
    rt.advance(20);
    c.onDelivered(0);
    // 1 and 2 lost; 3, 4, 5 arrive.
    for (const id of [3, 4, 5]) c.onDelivered(id);
    const w = c.window;
    expect(c.detectLost()).toEqual([1, 2]);
    expect(c.window).toBe(Math.floor(w / 2));
    // Another loss from the same flight does not cut again.
    for (const id of [7, 8, 9]) c.onDelivered(id);
    expect(c.detectLost()).toEqual([6]);
    expect(c.window).toBe(Math.floor(w / 2));
    expect(c.stats.losses).toBe(1);
  });

  it('declares a packet lost 9/8 RTT after a later one arrived, even with fewer than 3 behind it', () => {
    const rt = new FakeRuntime();
    const c = new CongestionController(rt);
    c.onSent(0);
    rt.advance(100);
    c.onDelivered(0);
    c.onSent(1);
    c.onSent(2);
    rt.advance(100);
    c.onDelivered(2);
    expect(c.detectLost()).toEqual([]);
    expect(c.nextTimerAt()).toBeCloseTo(100 + 112.5);
    rt.advance(13);
    expect(c.detectLost()).toEqual([1]);
  });

  it('backs off exponentially to an unresponsive peer and collapses the window on persistent congestion', () => {
    const rt = new FakeRuntime();
    const c = new CongestionController(rt, { initialWindow: 10, minWindow: 2 });
    c.onSent(0);
    rt.advance(50);
    c.onDelivered(0);
    const timeouts: number[] = [];
    for (let i = 0; i < 4; i++) {
      c.onSent(100 + i);
      const pto = c.probeTimeoutMs();
      timeouts.push(pto);
      rt.advance(pto);
      expect(c.onProbeTimeout()).toEqual([100 + i]);
    }
    expect(timeouts[1]! / timeouts[0]!).toBe(2);
    expect(timeouts[3]! / timeouts[2]!).toBe(2);
    expect(c.window).toBe(2);
    // Bounded: the timeout never exceeds maxRtoMs.
    for (let i = 0; i < 20; i++) {
      c.onSent(200 + i);
      rt.advance(c.probeTimeoutMs());
      c.onProbeTimeout();
    }
    expect(c.probeTimeoutMs()).toBe(60_000);
    // A delivery ends the back-off.
    c.onSent(999);
    rt.advance(50);
    c.onDelivered(999);
    expect(c.backoffs).toBe(0);
  });

  it('reacts to delay: a longer RTT slows pacing', () => {
    const rt = new FakeRuntime();
    const c = new CongestionController(rt);
    c.onSent(0);
    rt.advance(10);
    c.onDelivered(0);
    const fast = c.pacingIntervalMs();
    for (let i = 1; i < 40; i++) {
      c.onSent(i, false);
      rt.advance(200);
      c.onDelivered(i);
    }
    expect(c.pacingIntervalMs()).toBeGreaterThan(fast);
  });

  it('a congestion signal without tracking (server side) cuts at most once per RTT', () => {
    const rt = new FakeRuntime();
    const c = new CongestionController(rt, { initialWindow: 40, maxWindow: 100 });
    c.rttSample(100);
    c.onCongestionSignal();
    c.onCongestionSignal();
    expect(c.window).toBe(20);
    rt.advance(150);
    c.onCongestionSignal();
    expect(c.window).toBe(10);
  });

  it('CongestionTable keeps one controller per peer, bounded in count', () => {
    const rt = new FakeRuntime();
    const t = new CongestionTable(rt, { maxPeers: 3 });
    const a = t.get('a');
    expect(t.get('a')).toBe(a);
    for (const k of ['b', 'c', 'd']) t.get(k);
    expect(t.size).toBe(3);
    expect(t.get('a')).not.toBe(a);
  });

  it('validates its options', () => {
    expect(() => new CongestionController(new FakeRuntime(), { initialWindow: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => new CongestionController(new FakeRuntime(), { minWindow: 10, maxWindow: 5 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
