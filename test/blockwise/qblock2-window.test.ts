/**
 * The 'paced' mode's reaction to probe timeouts (RFC 9002 §6.2.4, §7.5): a
 * probe is never held back by the congestion window.
 */
import { describe, expect, it } from 'vitest';
import { BlockBitmap } from '../../src/blockwise/bitmap.js';
import type { PacerHost, QBlock2ClientStats } from '../../src/blockwise/qblock2-client.js';
import { resolveQBlockParams } from '../../src/blockwise/qblock2-params.js';
import { WindowPacer } from '../../src/blockwise/qblock2-window.js';
import { pathOptions } from '../../src/codec/options.js';
import type { RequestSpec } from '../../src/core/request.js';
import type { TimerHandle } from '../../src/core/runtime.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';

describe('WindowPacer probe timeouts', () => {
  it('a black-holed path: every probe timeout sends a request at that instant, also once the window collapsed', () => {
    const rt = new FakeRuntime(1);
    const sent: { at: number; spec: RequestSpec }[] = [];
    const stats: QBlock2ClientStats = { requests: 0, blocks: 0, duplicates: 0, rerequested: 0, continues: 0 };
    let timer: TimerHandle | undefined;
    const silent: number[] = [];
    const bitmap = new BlockBitmap(16);
    bitmap.set(0); // the probe's answer
    const host: PacerHost = {
      o: { runtime: rt, options: pathOptions('/x'), link: { send: () => undefined }, onBlock: () => undefined, congestion: { initialWindow: 3, minWindow: 1 } },
      params: resolveQBlockParams(),
      shape: { szx: 6, size: 16 * 1024, total: 16, etag: undefined },
      bitmap,
      stats,
      unsunk: 0,
      send: (spec) => void sent.push({ at: rt.now(), spec }),
      armTimer: (ms) => {
        if (timer !== undefined) rt.clearTimer(timer);
        timer = rt.setTimer(ms, () => {
          timer = undefined;
          const before = { timeouts: pacer.ctl.stats.timeouts, sent: sent.length };
          pacer.onTimer();
          if (pacer.ctl.stats.timeouts > before.timeouts && sent.length === before.sent) silent.push(rt.now());
        });
      },
    };
    const pacer = new WindowPacer(host);
    pacer.begin();
    pacer.onBlock(0);
    expect(sent.length).toBeGreaterThan(0);
    rt.advance(120_000);
    // Three timeouts in a row collapse the window to one (RFC 9002 §7.6) while a packet is still in flight.
    expect(pacer.ctl.stats.timeouts).toBeGreaterThanOrEqual(4);
    expect(pacer.ctl.window).toBe(1);
    expect(silent).toEqual([]);
  });
});
