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

/** A pacer for a 16-block body of which every block but `missing` is held, with its requests logged. */
function tailPacer(rt: FakeRuntime, missing: number): { pacer: WindowPacer; sent: { at: number; spec: RequestSpec }[] } {
  const sent: { at: number; spec: RequestSpec }[] = [];
  const bitmap = new BlockBitmap(16);
  for (let n = 0; n < 16; n++) if (n !== missing) bitmap.set(n);
  let timer: TimerHandle | undefined;
  const host: PacerHost = {
    o: { runtime: rt, options: pathOptions('/x'), link: { send: () => undefined }, onBlock: () => undefined },
    params: resolveQBlockParams(),
    shape: { szx: 6, size: 16 * 1024, total: 16, etag: undefined },
    bitmap,
    stats: { requests: 0, blocks: 0, duplicates: 0, rerequested: 0, continues: 0 },
    unsunk: 0,
    send: (spec) => void sent.push({ at: rt.now(), spec }),
    armTimer: (ms) => {
      if (timer !== undefined) rt.clearTimer(timer);
      timer = rt.setTimer(ms, () => {
        timer = undefined;
        pacer.onTimer();
      });
    },
  };
  const pacer = new WindowPacer(host);
  pacer.begin();
  return { pacer, sent };
}

describe('WindowPacer: the last missing block (the tail) under loss', () => {
  it('on a path without a queue, a lone expired block is asked for twice at the timeout (RFC 9002 §6.2.4: two probes)', () => {
    const rt = new FakeRuntime(1);
    const { pacer, sent } = tailPacer(rt, 15);
    for (let i = 0; i < 8; i++) pacer.ctl.rttSample(20); // a clean 20 ms path
    pacer.onBlock(0);
    expect(sent).toHaveLength(1); // the request for block 15
    const pto = pacer.ctl.probeTimeoutMs();
    rt.advance(pto); // lost: the probe timeout fires
    expect(sent).toHaveLength(3);
    expect(sent[1]!.at).toBe(sent[2]!.at);
    expect(sent[1]!.spec.options).toEqual(sent[2]!.spec.options);
  });

  it('behind a queue (SRTT well above the smallest RTT) it is asked for once: a copy would only add load', () => {
    const rt = new FakeRuntime(1);
    const { pacer, sent } = tailPacer(rt, 15);
    pacer.ctl.rttSample(20);
    for (let i = 0; i < 30; i++) pacer.ctl.rttSample(300); // 280 ms of queueing
    expect(pacer.ctl.queueing).toBe(true);
    pacer.onBlock(0);
    expect(sent).toHaveLength(1);
    rt.advance(pacer.ctl.probeTimeoutMs());
    expect(sent).toHaveLength(2);
  });
});
