import { describe, expect, it } from 'vitest';
import { hasQBlock2, QBlock2Server } from '../../src/blockwise/qblock2-server.js';
import { bufferSource } from '../../src/blockwise/source.js';
import type { CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType } from '../../src/codec/numbers.js';
import { qblock2Option } from '../../src/blockwise/qblock2-options.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { bytes, qb2Strings } from './qblock2-harness.js';

const get = (type: number, ...q: Array<[number, boolean]>): CoapMessage => ({ type: type as CoapMessage['type'], code: Code.GET, messageId: 1, token: Uint8Array.of(9), options: q.map(([n, m]) => qblock2Option(n, m, 6)), payload: new Uint8Array(0) });

function server(opts: Partial<ConstructorParameters<typeof QBlock2Server>[0]> = {}) {
  const rt = new FakeRuntime();
  const sent: Array<{ at: number; peer: string; qb2: string; con: boolean }> = [];
  const s = new QBlock2Server({ runtime: rt, sender: { send: (p, _t, spec, con) => sent.push({ at: rt.now(), peer: p.address, qb2: qb2Strings({ options: spec.options ?? [] })[0]!, con }) }, ...opts });
  return { rt, sent, s };
}

describe('QBlock2Server bursts', () => {
  it('answers a NON body request with the first block, then the rest of the set as NON; nothing for a request without Q-Block2', () => {
    const { rt, sent, s } = server();
    const src = bufferSource(bytes(100 * 1024));
    const first = s.handle(get(MessageType.NON, [0, true]), { address: 'a', port: 1 }, src) as { code: number };
    expect(first.code).toBe(Code.CONTENT);
    rt.advance(1);
    expect(sent.map((x) => x.qb2)).toEqual(Array.from({ length: 9 }, (_, i) => `${i + 1}/1/1024`));
    expect(sent.every((x) => !x.con)).toBe(true);
    expect(hasQBlock2({ ...get(MessageType.NON), options: [] })).toBe(false);
  });

  it('continues on its own after NON_TIMEOUT_RANDOM, at most maxUnansweredSets times, each gap doubling, then drops the burst', () => {
    const { rt, sent, s } = server({ maxUnansweredSets: 3 });
    s.handle(get(MessageType.NON, [0, true]), { address: 'a', port: 1 }, bufferSource(bytes(200 * 1024)));
    rt.advance(120_000);
    expect(sent.length).toBe(9 + 3 * 10);
    const starts = [10, 20, 30].map((n) => sent.find((x) => x.qb2.startsWith(`${n}/`))!.at);
    const gaps = [starts[0]!, starts[1]! - starts[0]!, starts[2]! - starts[1]!];
    expect(gaps[0]).toBeGreaterThanOrEqual(2000);
    expect(gaps[0]).toBeLessThanOrEqual(3000);
    expect(gaps[1]! / gaps[0]!).toBeGreaterThan(1.3);
    expect(gaps[2]! / gaps[1]!).toBeGreaterThan(1.3);
    expect(s.burstCount).toBe(0);
  });

  it('keeps at most maxBursts bursts; a dropped burst does not stop later requests from being served', () => {
    const { rt, sent, s } = server({ maxBursts: 5 });
    const src = bufferSource(bytes(50 * 1024));
    for (let i = 0; i < 50; i++) s.handle(get(MessageType.NON, [0, true]), { address: `p${i}`, port: 1 }, src);
    expect(s.burstCount).toBe(5);
    expect(s.stats.burstsDropped).toBe(45);
    // A device that rebooted asks with a new token for what it lacks: served from the request alone.
    sent.length = 0;
    // A NON request naming at most one set: every block goes through the sender, in order, at once.
    expect(s.handle(get(MessageType.NON, [3, false], [17, false], [30, false]), { address: 'p0', port: 1 }, src)).toBeUndefined();
    expect(sent.filter((x) => x.peer === 'p0').map((x) => x.qb2)).toEqual(['3/1/1024', '17/1/1024', '30/1/1024']);
  });

  it('never sends a burst to a peer the gate refuses (Echo: unverified address)', () => {
    const { rt, sent, s } = server({ gate: (p) => p.address === 'ok' });
    const src = bufferSource(bytes(50 * 1024));
    expect(s.handle(get(MessageType.NON, [0, true]), { address: 'spoofed', port: 1 }, src)).toBeDefined();
    rt.advance(60_000);
    expect(sent).toHaveLength(0);
  });

  it('answers a CON request with CON responses after the piggybacked first block', () => {
    const { rt, sent, s } = server();
    s.handle(get(MessageType.CON, [0, true]), { address: 'a', port: 1 }, bufferSource(bytes(4000)));
    rt.advance(1);
    expect(sent.map((x) => x.con)).toEqual([true, true, true]);
  });

  it('rejects a bad list with a 4.00 diagnostic instead of throwing', () => {
    const { s } = server();
    const r = s.handle(get(MessageType.NON, [5, false], [2, false]), { address: 'a', port: 1 }, bufferSource(bytes(50 * 1024))) as { code: number };
    expect(r.code).toBe(Code.BAD_REQUEST);
    expect(s.stats.rejected).toBe(1);
  });
});
