import { describe, expect, it } from 'vitest';
import { BlockBitmap } from '../../src/blockwise/bitmap.js';
import { QBlock2Client } from '../../src/blockwise/qblock2-client.js';
import { bufferSource } from '../../src/blockwise/source.js';
import type { CoapMessage } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { pathOptions } from '../../src/codec/options.js';
import type { RequestSpec } from '../../src/core/request.js';
import { mulberry32 } from '../../src/core/prng.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { bytes, Wire } from './qblock2-harness.js';

describe("Q-Block2 client, 'paced' mode", () => {
  for (const loss of [0, 0.1, 0.2]) {
    it(`receives 256 KiB correctly at ${loss * 100} % loss each way (seeded), recovering holes in about an RTT`, async () => {
      const body = bytes(256 * 1024, 11);
      const rnd = mulberry32(1234 + loss * 100);
      const w = new Wire(body, (dir, n) => n !== 0 || dir === 'req' ? rnd() < loss : false, { client: { mode: 'paced' }, latencyMs: 10 });
      void w.client.start();
      w.rt.advance(120_000);
      const outcome = await w.client.done;
      expect(outcome.kind).toBe('complete');
      expect(w.received).toEqual(body);
      const last = w.log[w.log.length - 1]!.at;
      // 256 blocks at 20 ms RTT: well under a second without loss, seconds (not minutes) with it.
      expect(last).toBeLessThan(loss === 0 ? 400 : 6000);
      if (loss === 0) expect(w.client.stats.rerequested).toBe(0);
    });
  }
});

describe('fallback and errors', () => {
  const setup = (answer: (spec: RequestSpec) => CoapMessage | undefined) => {
    const rt = new FakeRuntime();
    const sent: RequestSpec[] = [];
    const client: QBlock2Client = new QBlock2Client({
      runtime: rt,
      options: pathOptions('/x'),
      link: {
        send: (spec) => {
          sent.push(spec);
          const res = answer(spec);
          if (res) rt.setTimer(5, () => client.onResponse(res));
        },
      },
      onBlock: () => undefined,
    });
    return { rt, sent, client };
  };
  const msg = (code: number, options: { number: number; value: Uint8Array }[] = [], payload = new Uint8Array(0)): CoapMessage => ({ type: MessageType.ACK, code, messageId: 1, token: Uint8Array.of(1), options, payload });

  it('a 4.02 (server without Q-Block, RFC 9177 §4.1) is a fallback to Block2', async () => {
    const { rt, client } = setup(() => msg(Code.BAD_OPTION));
    void client.start();
    rt.advance(10);
    expect(await client.done).toMatchObject({ kind: 'fallback', reason: 'bad-option' });
  });

  it('a 2.05 with Block2 instead of Q-Block2 is a fallback', async () => {
    const { rt, client } = setup(() => msg(Code.CONTENT, [{ number: OptionNumber.BLOCK2, value: Uint8Array.of(0x0e) }], new Uint8Array(1024)));
    void client.start();
    rt.advance(10);
    expect(await client.done).toMatchObject({ kind: 'fallback', reason: 'no-qblock2' });
  });

  it('4.04 rejects with RESPONSE_CODE carrying the code', async () => {
    const { rt, client } = setup(() => msg(Code.NOT_FOUND));
    void client.start();
    rt.advance(10);
    await expect(client.done).rejects.toMatchObject({ code: 'RESPONSE_CODE', responseCode: Code.NOT_FOUND });
  });

  it('a payload without Size2 is refused (RFC 9177 §4.6)', async () => {
    const { rt, client } = setup(() => msg(Code.CONTENT, [{ number: OptionNumber.Q_BLOCK2, value: Uint8Array.of(0x0e) }], new Uint8Array(1024)));
    void client.start();
    rt.advance(10);
    await expect(client.done).rejects.toMatchObject({ code: 'BLOCK_MISMATCH' });
  });

  it('an ETag that changes mid-body fails with ETAG_MISMATCH: two versions are never stitched', async () => {
    const a = bufferSource(bytes(30 * 1024, 1));
    const b = bufferSource(bytes(30 * 1024, 2));
    let calls = 0;
    const w = new Wire(bytes(30 * 1024, 1), () => false, {
      client: { mode: 'paced' },
      source: { size: a.size, get etag() { return calls++ < 4 ? a.etag : b.etag; }, read: (o, l) => a.read(o, l) },
    });
    void w.client.start();
    w.rt.advance(10_000);
    await expect(w.client.done).rejects.toMatchObject({ code: 'ETAG_MISMATCH' });
  });

  it('a body larger than maxSize fails with TOO_LARGE at the first payload', async () => {
    const w = new Wire(bytes(50_000), () => false, { client: { maxSize: 10_000 } });
    void w.client.start();
    w.rt.advance(1000);
    await expect(w.client.done).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('resumes: blocks already held are not asked for', async () => {
    const body = bytes(40 * 1024, 5);
    const held = new BlockBitmap(40);
    for (let n = 0; n < 25; n++) held.set(n);
    const w = new Wire(body, () => false, { client: { mode: 'paced', held } });
    void w.client.start();
    w.rt.advance(5000);
    expect((await w.client.done).kind).toBe('complete');
    const nums = w.responses().map((r) => Number(r.qb2[0]!.split('/')[0]));
    expect(Math.min(...nums)).toBe(25);
    expect(w.received.subarray(25 * 1024)).toEqual(body.subarray(25 * 1024));
  });
});
