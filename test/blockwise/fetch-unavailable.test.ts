/**
 * "Try again later" is retried (issue 8, item 2): a 5.03 Service Unavailable
 * or 4.29 Too Many Requests is part of the per-block retry policy, after the
 * Max-Age the server asked for (RFC 7252 §5.9.3.4, RFC 8516 §2; 60 s when
 * absent, capped by the policy) plus jitter, on the injected clock.
 */
import { describe, expect, it } from 'vitest';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { bufferSource } from '../../src/blockwise/source.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { encodeUint, pathOptions } from '../../src/codec/options.js';
import { CoapfwError, isCoapfwError } from '../../src/errors.js';
import { CoapEndpoint, type ResponseSpec } from '../../src/messaging/endpoint.js';
import type { RetryPolicy } from '../../src/messaging/retry.js';
import { drive } from '../helpers/drive.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { MemNetwork } from '../../src/testing/mem-transport.js';

const SERVER = { address: '10.0.0.1', port: 5683 };
const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);

/** A server answering the first `busy` requests with `busyAnswer`, then the data; records when each request came. */
function setup(busy: number, busyAnswer: ResponseSpec) {
  const net = new MemNetwork();
  const rt = new FakeRuntime(11);
  const server = new CoapEndpoint(net.endpoint(SERVER.address, SERVER.port), { runtime: rt });
  const times: number[] = [];
  const src = bufferSource(data);
  server.handle((req) => {
    times.push(rt.now());
    return times.length <= busy ? busyAnswer : serveBlock2(req.message, src);
  });
  const client = new CoapEndpoint(net.endpoint('10.0.0.2', 40000), { runtime: rt });
  const fetch = (retry?: RetryPolicy) => fetchAll((s, o) => client.request(SERVER, s, o), { runtime: rt, options: pathOptions('/fw'), retry });
  return { rt, times, fetch };
}


const unavailable = (maxAge?: number): ResponseSpec => ({
  code: Code.SERVICE_UNAVAILABLE,
  options: maxAge === undefined ? [] : [{ number: OptionNumber.MAX_AGE, value: encodeUint(maxAge) }],
});

describe('fetchBlocks and 5.03 + Max-Age', () => {
  it('waits Max-Age (plus at most half of it as jitter) before asking again, then completes', async () => {
    const { rt, times, fetch } = setup(2, unavailable(7));
    const { data: got } = await drive(rt, fetch());
    expect(got).toEqual(data);
    expect(times.length).toBe(2 + 3); // two refusals, then three blocks
    for (const i of [1, 2]) {
      const waited = times[i]! - times[i - 1]!;
      expect(waited).toBeGreaterThanOrEqual(7000);
      expect(waited).toBeLessThanOrEqual(7000 * 1.5 + 100);
    }
  });

  it('without Max-Age waits the RFC default of 60 s, as far as the policy cap allows', async () => {
    const long = setup(1, unavailable());
    await drive(long.rt, long.fetch({ maxRetryAfterMs: 120_000 }));
    expect(long.times[1]! - long.times[0]!).toBeGreaterThanOrEqual(60_000);
    expect(long.times[1]! - long.times[0]!).toBeLessThanOrEqual(90_100);
    const capped = setup(1, unavailable());
    await drive(capped.rt, capped.fetch({ maxRetryAfterMs: 5000 }));
    expect(capped.times[1]! - capped.times[0]!).toBeGreaterThanOrEqual(5000);
    expect(capped.times[1]! - capped.times[0]!).toBeLessThanOrEqual(7600);
    const byDefault = setup(1, unavailable(3600));
    await drive(byDefault.rt, byDefault.fetch());
    expect(byDefault.times[1]! - byDefault.times[0]!).toBeLessThanOrEqual(45_100); // default cap 30 s, plus jitter
  });

  it('retries 4.29 Too Many Requests the same way', async () => {
    const { rt, times, fetch } = setup(1, { code: Code.TOO_MANY_REQUESTS, options: [{ number: OptionNumber.MAX_AGE, value: encodeUint(2) }] });
    expect((await drive(rt, fetch())).data).toEqual(data);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(2000);
  });

  it('when the attempts run out, the error carries responseCode, maxAge and the block', async () => {
    const { rt, times, fetch } = setup(1000, unavailable(2));
    const e = await drive(rt, fetch({ attempts: 3 })).catch((x: unknown) => x);
    expect(isCoapfwError(e, 'RESPONSE_CODE')).toBe(true);
    expect((e as CoapfwError).responseCode).toBe(Code.SERVICE_UNAVAILABLE);
    expect((e as CoapfwError).maxAge).toBe(2);
    expect((e as CoapfwError).block).toBe(0);
    expect(times).toHaveLength(3);
  });

  it('other error codes are not retried and still carry responseCode', async () => {
    const { rt, times, fetch } = setup(1000, { code: Code.NOT_FOUND });
    const e = await drive(rt, fetch()).catch((x: unknown) => x);
    expect((e as CoapfwError).responseCode).toBe(Code.NOT_FOUND);
    expect(times).toHaveLength(1);
  });
});
