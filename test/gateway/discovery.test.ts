/**
 * The multicast discovery handler on a fake clock (RFC 7252 §8.2, RFC 6690
 * §4.1): NON only, GET /.well-known/core only, no answer to errors or to a
 * filter that matches nothing, each answer within the leisure period, and
 * the service links as the gateway lists them.
 */
import { describe, expect, it } from 'vitest';
import { parseLinks } from '../../src/codec/link-format.js';
import type { CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType } from '../../src/codec/numbers.js';
import { pathOptions, queryOptions } from '../../src/codec/options.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import { discoveryHandler } from '../../src/gateway/discovery.js';
import { serviceLinks } from '../../src/gateway/links.js';
import { WellKnownCore } from '../../src/server/well-known.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';

const peer = { address: '10.0.0.9', port: 40000 };

function request(type: number, path: string, query?: string, code: number = Code.GET): CoapMessage {
  return { type: type as CoapMessage['type'], code, messageId: 7, token: Uint8Array.of(1, 2, 3), options: [...pathOptions(path), ...(query ? queryOptions(query) : [])], payload: new Uint8Array(0) };
}

async function ask(rt: FakeRuntime, msg: CoapMessage, leisureMs = 1000): Promise<{ res: ResponseSpec | undefined; afterMs: number; why: string[] }> {
  const core = new WellKnownCore(() => serviceLinks(), rt);
  const why: string[] = [];
  const handler = discoveryHandler(core.resource(), { runtime: rt, leisureMs, onRequest: (_a, w) => why.push(w) });
  const start = rt.now();
  let done = false;
  let res: ResponseSpec | undefined;
  const p = Promise.resolve(handler({ message: msg, peer })).then((r) => {
    done = true;
    res = r;
  });
  for (let i = 0; i < 2000 && !done; i++) {
    await new Promise((r) => setImmediate(r));
    if (!done) rt.advance(1);
  }
  await p;
  return { res, afterMs: rt.now() - start, why };
}

describe('discovery handler', () => {
  it('answers a NON GET /.well-known/core?rt=firmware with the service links, within the leisure period', async () => {
    const delays: number[] = [];
    for (let seed = 1; seed <= 8; seed++) {
      const rt = new FakeRuntime(seed);
      const { res, afterMs } = await ask(rt, request(MessageType.NON, '/.well-known/core', 'rt=firmware'), 1000);
      expect(res?.code).toBe(Code.CONTENT);
      const links = parseLinks(new TextDecoder().decode(res!.payload));
      expect(links.map((l) => l.target)).toEqual(['/m', '/fw/sha256']);
      delays.push(afterMs);
    }
    expect(Math.max(...delays)).toBeLessThanOrEqual(1001);
    expect(new Set(delays).size).toBeGreaterThan(1); // a random point in the leisure period, not a fixed delay
  });

  it('filters: rt=coapfw.devices finds /d only; a filter that matches nothing is silence, not an empty 2.05', async () => {
    const rt = new FakeRuntime();
    const d = await ask(rt, request(MessageType.NON, '/.well-known/core', 'rt=coapfw.devices'));
    expect(parseLinks(new TextDecoder().decode(d.res!.payload)).map((l) => l.target)).toEqual(['/d']);
    const none = await ask(rt, request(MessageType.NON, '/.well-known/core', 'rt=toaster'));
    expect(none.res).toBeUndefined();
    expect(none.why).toEqual(['no matching links, or an error']);
  });

  it('never answers a CON, another path, another method, or with an error (RFC 7252 §8.1, §8.2)', async () => {
    const rt = new FakeRuntime();
    expect((await ask(rt, request(MessageType.CON, '/.well-known/core', 'rt=firmware'))).res).toBeUndefined();
    expect((await ask(rt, request(MessageType.NON, '/fw/sha256'))).res).toBeUndefined();
    expect((await ask(rt, request(MessageType.NON, '/.well-known/core', undefined, Code.POST))).res).toBeUndefined();
    expect((await ask(rt, request(MessageType.NON, '/nothing/here'))).res).toBeUndefined();
  });

  it('answers an unfiltered query with every service link', async () => {
    const rt = new FakeRuntime();
    const { res } = await ask(rt, request(MessageType.NON, '/.well-known/core'));
    expect(parseLinks(new TextDecoder().decode(res!.payload)).map((l) => l.target)).toEqual(['/m', '/fw/sha256', '/d']);
  });
});
