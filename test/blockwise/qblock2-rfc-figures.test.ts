/**
 * RFC 9177 §10.2 message flows replayed between our Q-Block2 client ('rfc'
 * mode) and server with a fake clock. The figures show NON requests with
 * Observe; here the same GETs without Observe (the RFC notes the Observe
 * detail can be ignored for Q-Block2). MAX_PAYLOADS 10, 1024-byte blocks,
 * 11 payloads as in Figures 9-11.
 */
import { describe, expect, it } from 'vitest';
import { MessageType } from '../../src/codec/numbers.js';
import { bytes, Wire } from './qblock2-harness.js';

const ELEVEN = 10 * 1024 + 300; // 11 payloads, the last one short
const run = (w: Wire, ms = 60_000): void => {
  void w.client.start();
  w.rt.advance(ms);
};

describe('RFC 9177 Figure 8: simple Q-Block2 GET without loss', () => {
  it('one NON GET QB2:0/1/1024 draws four payloads, QB2 0..3, M set on all but the last', async () => {
    const body = bytes(3 * 1024 + 10);
    const w = new Wire(body, () => false, { client: { confirmableFirst: false } });
    run(w);
    const outcome = await w.client.done;
    expect(outcome.kind).toBe('complete');
    expect(w.requests().map((r) => r.qb2)).toEqual([['0/1/1024']]);
    expect(w.requests()[0]!.type).toBe(MessageType.NON);
    expect(w.responses().map((r) => r.qb2[0])).toEqual(['0/1/1024', '1/1/1024', '2/1/1024', '3/0/1024']);
    // NON request, NON responses (RFC 9177 §10.2).
    expect(w.responses().every((r) => r.type === MessageType.NON)).toBe(true);
    expect(w.received).toEqual(body);
  });
});

describe('RFC 9177 Figure 9: MAX_PAYLOADS limit without loss', () => {
  it('the client acknowledges the full set with a Continue QB2:10/1/1024 and the server sends the 11th payload at once', async () => {
    const body = bytes(ELEVEN);
    const w = new Wire(body, () => false, { client: { confirmableFirst: false } });
    run(w);
    expect((await w.client.done).kind).toBe('complete');
    expect(w.requests().map((r) => r.qb2)).toEqual([['0/1/1024'], ['10/1/1024']]);
    const res = w.responses().map((r) => r.qb2[0]);
    expect(res).toEqual([...Array.from({ length: 10 }, (_, i) => `${i}/1/1024`), '10/0/1024']);
    // The 11th payload follows the Continue within a round trip, not after NON_TIMEOUT (2 s).
    const last = w.responses()[10]!;
    const cont = w.requests()[1]!;
    expect(last.at - cont.at).toBeLessThan(100);
    expect(w.server.stats.autonomousSets).toBe(0);
    expect(w.received).toEqual(body);
  });
});

describe('RFC 9177 Figure 10: MAX_PAYLOADS with recovery', () => {
  it('blocks 1 and 9 lost, the server sends block 10 after NON_TIMEOUT, the client asks for QB2:1/0 and QB2:9/0 in one request after NON_RECEIVE_TIMEOUT, then for 1 again', async () => {
    const body = bytes(ELEVEN);
    // Lost: the first copies of blocks 1 and 9, and the second copy of block 1.
    const w = new Wire(body, (dir, n, copy) => dir === 'res' && ((n === 1 && copy <= 1) || (n === 9 && copy === 0)), { client: { confirmableFirst: false } });
    run(w);
    expect((await w.client.done).kind).toBe('complete');
    expect(w.requests().map((r) => r.qb2)).toEqual([['0/1/1024'], ['1/0/1024', '9/0/1024'], ['1/0/1024']]);
    const res = w.responses();
    const ten = res.find((r) => r.qb2[0] === '10/0/1024')!;
    // [[NON_TIMEOUT (server) delay expires]]: NON_TIMEOUT_RANDOM is 2..3 s after the first set.
    expect(ten.at - res[9]!.at).toBeGreaterThanOrEqual(2000);
    expect(ten.at - res[9]!.at).toBeLessThanOrEqual(3000);
    // [[NON_RECEIVE_TIMEOUT (client) delay expires]]: 4 s after the last payload received.
    const [, missing, again] = w.requests();
    expect(missing!.at - (ten.at + 10)).toBeCloseTo(4000, 0);
    // The missing payloads carry the token of the request for them (Figure 10: T:0xf3).
    expect(res.filter((r) => r.token === missing!.token).map((r) => r.qb2[0])).toEqual(['1/1/1024', '9/1/1024']);
    expect(res.filter((r) => r.token === again!.token).map((r) => r.qb2[0])).toEqual(['1/1/1024']);
    expect(w.server.stats.autonomousSets).toBe(1);
    expect(w.received).toEqual(body);
  });
});

describe('RFC 9177 Figure 11: recovery using the M bit', () => {
  it('only blocks 0 and 1 arrive; the client asks QB2:2/1/1024 (this and later blocks of the set), then Continues with QB2:10/1/1024', async () => {
    const body = bytes(ELEVEN);
    const w = new Wire(body, (dir, n, copy) => dir === 'res' && n !== undefined && n >= 2 && copy === 0, { client: { confirmableFirst: false } });
    run(w);
    expect((await w.client.done).kind).toBe('complete');
    expect(w.requests().map((r) => r.qb2)).toEqual([['0/1/1024'], ['2/1/1024'], ['10/1/1024']]);
    const afterM = w.responses().filter((r) => r.token === w.requests()[1]!.token).map((r) => r.qb2[0]);
    expect(afterM).toEqual(['2/1/1024', '3/1/1024', '4/1/1024', '5/1/1024', '6/1/1024', '7/1/1024', '8/1/1024', '9/1/1024']);
    expect(w.received).toEqual(body);
  });
});

describe('RFC 9177 §7.2 NON_MAX_RETRANSMIT', () => {
  it('a block that never arrives is asked for 4 times, the waits doubling (4, 8, 16, 32 s), then the client gives up with TIMEOUT', async () => {
    const body = bytes(ELEVEN);
    const w = new Wire(body, (dir, n) => dir === 'res' && n === 5, { client: { confirmableFirst: false } });
    void w.client.start();
    w.rt.advance(200_000);
    await expect(w.client.done).rejects.toMatchObject({ code: 'TIMEOUT' });
    const asks = w.requests().filter((r) => r.qb2.includes('5/0/1024'));
    expect(asks).toHaveLength(4);
    const gaps = asks.slice(1).map((r, i) => r.at - asks[i]!.at);
    expect(gaps.map((g) => Math.round(g / 1000))).toEqual([8, 16, 32]);
  });
});

describe('a Confirmable first request (§4.1)', () => {
  it('is answered piggybacked; the rest of the set follows as CON', async () => {
    const body = bytes(5000);
    const w = new Wire(body, () => false);
    run(w);
    expect((await w.client.done).kind).toBe('complete');
    expect(w.requests()[0]!.type).toBe(MessageType.CON);
    const types = w.responses().map((r) => r.type);
    expect(types[0]).toBe(MessageType.ACK);
    expect(types.slice(1).every((t) => t === MessageType.CON)).toBe(true);
  });
});
