/** The rollout engine's pure rules: wave sizes, timeliness, the chart's curve. */
import { describe, expect, it } from 'vitest';
import { confirmationCurve, defaultWaves, timeliness, waveSize } from '../../src/service/rollout-plan.js';
import { URGENCIES } from '../../src/service/model.js';

const spec = (size: { count: number } | { percent: number }) => ({ size, successPermille: 900, failurePermille: 100, timeLimitS: 60 });

describe('rollout plan', () => {
  it('a percentage is a cumulative share, rounded up; a count is the wave\'s own', () => {
    expect(waveSize(spec({ percent: 1 }), 50, 0)).toBe(1);
    expect(waveSize(spec({ percent: 10 }), 1000, 10)).toBe(90);
    expect(waveSize(spec({ percent: 100 }), 1000, 100)).toBe(900);
    expect(waveSize(spec({ percent: 10 }), 1000, 200)).toBe(0); // earlier waves already hold more
    expect(waveSize(spec({ count: 5 }), 1000, 200)).toBe(5);
  });

  it('timeliness: the k-th confirmation for 50, 90 and 100 %; undefined until reached', () => {
    const at = [10, 20, 30, 40, 50, 60, 70, 80, 90];
    expect(timeliness(0, at, 10)).toEqual({ targeted: 10, confirmed: 9, p50Ms: 50, p90Ms: 90, p100Ms: undefined });
    expect(timeliness(5, [], 0)).toEqual({ targeted: 0, confirmed: 0, p50Ms: undefined, p90Ms: undefined, p100Ms: undefined });
  });

  it('the curve has at most the points asked for and always ends at the last confirmation', () => {
    const at = Array.from({ length: 1000 }, (_, i) => 1000 + i * 10);
    const curve = confirmationCurve(1000, at, 100);
    expect(curve.length).toBeLessThanOrEqual(101);
    expect(curve[curve.length - 1]).toEqual([9990, 1000]);
    expect(curve.every(([, n], i) => i === 0 || n > curve[i - 1]![1])).toBe(true);
    expect(confirmationCurve(0, [])).toEqual([]);
  });

  it('every urgency has defaults whose last wave reaches every device', () => {
    for (const u of URGENCIES) expect(defaultWaves(u).at(-1)!.size).toEqual({ percent: 100 });
    expect(defaultWaves('critical')[0]!.timeLimitS).toBeLessThan(defaultWaves('normal')[0]!.timeLimitS);
  });
});
