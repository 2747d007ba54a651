/**
 * Amplification without --echo (issue 8, item 4; RFC 9175 §2.4): by
 * default an unverified address gets no Observe registration, no separate
 * response and no CON retransmission beyond 3x the request; a verified one
 * (it answered a CON of ours, or an Echo) still gets everything.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, pathOptions } from '../../src/codec/options.js';
import { CoapEndpoint, type ResponseSpec } from '../../src/messaging/endpoint.js';
import { VerifiedPeers, resolveAmplification } from '../../src/messaging/verified.js';
import { echoGuard } from '../../src/server/echo-guard.js';
import type { Peer } from '../../src/core/transport.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork, flush } from '../../src/testing/mem-transport.js';
import { observeRequest, observerDevice, observeServer, SERVER, until } from './observe-helpers.js';

type Server = Awaited<ReturnType<typeof observeServer>>;
let s: Server | undefined;
afterEach(async () => {
  await s?.close();
  s = undefined;
});

/** Let `seconds` of fake time pass, a second at a time, with I/O in between. */
async function pass(rt: FakeRuntime, seconds: number): Promise<void> {
  for (let t = 0; t < seconds; t++) {
    rt.advance(1000);
    await flush();
  }
}

describe('a spoofed Observe registration (the victim never answers)', () => {
  it('draws at most 3x its size, before and after the file changes, CON or NON', async () => {
    s = await observeServer({ size: 1024 });
    const report: string[] = [];
    for (const [i, type] of [MessageType.NON, MessageType.CON].entries()) {
      const victim: Peer = { address: `192.0.2.${10 + i}`, port: 5683 };
      s.net.endpoint(victim.address, victim.port); // exists, never answers
      const req = observeRequest(Uint8Array.of(1, 2, 3, 4), type, 100 + i);
      s.inject(req, victim);
      await pass(s.rt, 300);
      await s.change();
      await pass(s.rt, 300);
      const drawn = s.bytesTo(victim);
      report.push(`${type === MessageType.CON ? 'CON' : 'NON'}: ${req.length}-byte request drew ${drawn} bytes (${(drawn / req.length).toFixed(2)}x)`);
      expect(drawn).toBeLessThanOrEqual(3 * req.length);
      expect(s.sentTo(victim).every((m) => m.payload.length === 0)).toBe(true); // pings and an empty ACK, never the file
    }
    expect(s.observe.size).toBe(0);
    console.log(`spoofed Observe registrations: ${report.join('; ')}`);
  });

  it('a flood from many spoofed addresses: each draws at most 3x; pending checks are bounded', async () => {
    s = await observeServer({ size: 1024, endpoint: { amplification: { maxPendingVerifications: 16 } } });
    const victims = Array.from({ length: 100 }, (_, i): Peer => ({ address: `198.51.100.${i}`, port: 5683 }));
    const req = observeRequest(Uint8Array.of(9), MessageType.NON);
    for (const v of victims) s.inject(req, v);
    await pass(s.rt, 300);
    const drawn = victims.map((v) => s!.bytesTo(v));
    console.log(`spoofed Observe flood: ${victims.length} victims, at most ${Math.max(...drawn)} bytes each for a ${req.length}-byte request, ${drawn.filter((d) => d > 3 * req.length).length} over 3x`);
    expect(Math.max(...drawn)).toBeLessThanOrEqual(3 * req.length);
    expect(s.observe.size).toBe(0);
  });
});

describe('a verified observer still gets everything', () => {
  it('is registered after answering the ping, and its notifications are retransmitted until ACKed', async () => {
    s = await observeServer({ size: 1024 });
    const dev = observerDevice(s.net, { address: '10.0.0.9', port: 5683 });
    await dev.register();
    await until(() => dev.got.length > 0, 'registration response');
    expect(dev.got[0]!.payload.length).toBe(1024);
    expect(getOption(dev.got[0]!, OptionNumber.OBSERVE)).toBeDefined();
    expect(s.observe.size).toBe(1);
    dev.state.acking = false; // a lossy stretch: our ACKs are lost
    await s.change();
    await until(() => dev.got.length >= 2, 'notification');
    await pass(s.rt, 100);
    const cons = dev.got.filter((m) => m.type === MessageType.CON);
    expect(cons).toHaveLength(5); // the notification and MAX_RETRANSMIT (4) retransmissions
    expect(new Set(cons.map((m) => m.messageId)).size).toBe(1);
  });
});

/** An endpoint whose handler answers after `delayMs` of fake time. */
function slowServer(answer: ResponseSpec, delayMs = 3000, guard = false) {
  const net = new MemNetwork();
  const rt = new FakeRuntime(4);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  const slow = () => new Promise<ResponseSpec>((resolve) => rt.setTimer(delayMs, () => resolve(answer)));
  server.handle(guard ? echoGuard(slow, { runtime: rt }) : slow);
  const con = (mid: number, path = '/slow') => encodeMessage({ type: MessageType.CON, code: Code.GET, messageId: mid, token: Uint8Array.of(5, 5), options: pathOptions(path), payload: new Uint8Array() });
  const sentTo = (p: Peer) => net.log.filter((l) => l.to.address === p.address && l.to.port === p.port);
  return { net, rt, server, con, sentTo, inject: (b: Uint8Array, from: Peer) => net.nodes.get(`${SERVER.address}:${SERVER.port}`)!.inject(b, from) };
}

describe('a slow handler (separate response, RFC 7252 §5.2.2)', () => {
  const big: ResponseSpec = { code: Code.CONTENT, payload: new Uint8Array(1024) };

  it('to an unverified peer: the response is sent once, never retransmitted', async () => {
    const t = slowServer(big);
    const victim = { address: '192.0.2.50', port: 5683 };
    t.inject(t.con(1), victim);
    await pass(t.rt, 300);
    const msgs = t.sentTo(victim).map((l) => decodeMessage(l.data));
    expect(msgs.map((m) => [m.type, m.code])).toEqual([
      [MessageType.ACK, Code.EMPTY],
      [MessageType.CON, Code.CONTENT],
    ]);
    expect(t.server.stats.withheld).toBe(4);
  });

  it('to an unverified peer: a small response is retransmitted as far as 3x the request allows', async () => {
    const t = slowServer({ code: Code.CHANGED });
    const victim = { address: '192.0.2.51', port: 5683 };
    const req = t.con(2);
    t.inject(req, victim);
    await pass(t.rt, 300);
    const sent = t.sentTo(victim);
    expect(sent.reduce((n, l) => n + l.data.length, 0)).toBeLessThanOrEqual(3 * req.length);
    expect(sent.filter((l) => decodeMessage(l.data).type === MessageType.CON).length).toBeGreaterThan(1);
  });

  it('to a verified peer that loses our ACKs: all retransmissions', async () => {
    const t = slowServer(big);
    const peer = { address: '10.0.0.2', port: 40000 };
    const client = new CoapEndpoint(t.net.endpoint(peer.address, peer.port), { runtime: t.rt });
    // The peer answers a ping of ours: its address is verified.
    expect(await t.server.verify(peer, 20)).toBe('verified');
    t.net.filter = (from) => from.port !== peer.port; // from now on everything it sends is lost
    t.inject(t.con(3), peer);
    await pass(t.rt, 300);
    const cons = t.sentTo(peer).map((l) => decodeMessage(l.data)).filter((m) => m.type === MessageType.CON && m.code === Code.CONTENT);
    expect(cons).toHaveLength(5);
    await client.close();
  });

  it('with --echo: what the guard lets through (at most 3x) is not multiplied by retransmissions', async () => {
    const t = slowServer({ code: Code.CONTENT, payload: new Uint8Array(20) }, 3000, true);
    const victim = { address: '192.0.2.52', port: 5683 };
    const req = t.con(4);
    t.inject(req, victim);
    await pass(t.rt, 300);
    const drawn = t.sentTo(victim).reduce((n, l) => n + l.data.length, 0);
    console.log(`--echo, slow handler, spoofed ${req.length}-byte request: ${drawn} bytes drawn (${(drawn / req.length).toFixed(2)}x)`);
    expect(drawn).toBeLessThanOrEqual(3 * req.length);
  });
});

describe('the verified-address table', () => {
  it('is bounded and expires', () => {
    const rt = new FakeRuntime(1);
    const v = new VerifiedPeers(rt, resolveAmplification({ maxVerifiedPeers: 100, verifiedLifetimeMs: 1000 }));
    for (let i = 0; i < 1000; i++) v.add({ address: `10.9.${i >> 8}.${i & 255}`, port: 1 });
    expect(v.size).toBe(100);
    expect(v.has({ address: '10.9.3.231', port: 1 })).toBe(true); // the newest
    expect(v.has({ address: '10.9.0.0', port: 1 })).toBe(false);
    rt.advance(1001);
    expect(v.has({ address: '10.9.3.231', port: 1 })).toBe(false);
  });
});

describe('an address check on a lossy path (RFC 9175 §2.4)', () => {
  const ping = (l: { data: Uint8Array }): boolean => {
    const m = decodeMessage(l.data);
    return m.type === MessageType.CON && m.code === Code.EMPTY;
  };

  it('a further request of the peer while the check runs pings again at once: one answered ping verifies', async () => {
    const t = slowServer({ code: Code.CHANGED });
    const peer = { address: '10.0.0.3', port: 40001 };
    const client = new CoapEndpoint(t.net.endpoint(peer.address, peer.port), { runtime: t.rt });
    let drops = 1;
    t.net.filter = (_from, to, data) => !(to.port === peer.port && decodeMessage(data).code === Code.EMPTY && drops-- > 0); // the first ping is lost
    let result: string | undefined;
    void t.server.verify(peer, 20).then((r) => (result = r));
    await flush();
    expect(result).toBeUndefined();
    void t.server.verify(peer, 20); // the peer's next request: another ping, not a wait for ACK_TIMEOUT
    await flush();
    expect(result).toBe('verified');
    expect(t.rt.now()).toBe(0);
    expect(t.sentTo(peer).filter(ping)).toHaveLength(2);
    await client.close();
  });

  it('a spoofed peer draws at most 8 extra pings per check, each within its request\'s budget', async () => {
    const t = slowServer({ code: Code.CHANGED });
    const victim = { address: '192.0.2.60', port: 5683 };
    t.net.endpoint(victim.address, victim.port); // exists, never answers
    t.net.filter = (from) => from.port !== victim.port;
    const results: string[] = [];
    for (let i = 0; i < 20; i++) void t.server.verify(victim, 20).then((r) => results.push(r));
    void t.server.verify(victim, 1); // 3 bytes of budget: no ping for it
    await flush();
    expect(t.sentTo(victim).filter(ping)).toHaveLength(1 + 8);
    await pass(t.rt, 300);
    expect(new Set(results)).toEqual(new Set(['unanswered']));
    // The first ping's retransmissions (within the first request's budget) and the 8 extra ones, never more.
    expect(t.sentTo(victim).filter(ping).length).toBeLessThanOrEqual(1 + 8 + 4);
  });
});
