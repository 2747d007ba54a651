/**
 * A Q-Block2 fill (RFC 9177) from a real file server that goes away in the
 * middle: the fill stalls, keeps the blocks it has (in order or not), and
 * once the upstream is back resumes with Q-Block2 asking only for the blocks
 * it does not hold; the device gets the image's bytes.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { openClient } from '../../src/client/open.js';
import { decodeBlock, encodeBlock } from '../../src/codec/block.js';
import { decodeMessage } from '../../src/codec/message.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, pathOptions } from '../../src/codec/options.js';
import type { Transport } from '../../src/core/transport.js';
import { startGateway } from '../../src/gateway/gateway.js';
import type { GatewayEvent } from '../../src/gateway/options.js';
import { tapTransport } from '../../src/testing/tap.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { hexOf, image, tempDir, until } from './helpers.js';
import { ServiceState, startUpstream, type BlockLog } from './upstream.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => undefined);
});

const IMAGE = image(64 * 1024, 41); // 64 blocks of 1024
const HEX = hexOf(IMAGE);
const PATH = `fw/sha256/${HEX}`;

/** The gateway's upstream link, cut (every datagram from the upstream dropped) once `after` Q-Block2 payloads came through, until the test mends it. */
class Cutter {
  /** Blocks that came through before the cut. */
  readonly passed = new Set<number>();
  cut = false;
  private once = false;
  constructor(private readonly after: number) {}

  readonly wrap = (inner: Transport): Transport =>
    tapTransport(inner, {
      received: (data) => {
        if (this.cut) return false;
        const raw = getOption(decodeMessage(data), OptionNumber.Q_BLOCK2);
        if (raw !== undefined && !this.once) {
          this.passed.add(decodeBlock(raw).num);
          if (this.passed.size >= this.after) this.cut = this.once = true;
        }
        return true;
      },
    });
}

describe('a Q-Block2 fill whose upstream goes away', () => {
  it('stalls, then resumes with Q-Block2 for the blocks it does not hold; the device gets the right bytes', { timeout: 60_000 }, async () => {
    const t = await tempDir('qb2-resume');
    cleanups.push(t.remove);
    const served = join(t.dir, 'served');
    await mkdir(served);
    await writeFile(join(served, 'fw.bin'), IMAGE);
    const first: BlockLog = new Map();
    const upstream = await startUpstream(served, 0, new ServiceState(), new Map(), first);
    cleanups.unshift(() => upstream.close());
    const cutter = new Cutter(20);
    const events: GatewayEvent[] = [];
    const gw = await startGateway({
      upstream: upstream.uri,
      cacheDir: join(t.dir, 'gw'),
      host: '127.0.0.1',
      port: 0,
      upstreamClient: { params: { ackTimeoutMs: 300, maxRetransmit: 2 }, wrapTransport: cutter.wrap },
      onEvent: (e) => events.push(e),
    });
    cleanups.unshift(() => gw.close());
    const c = await openClient(`coap://127.0.0.1:${gw.address().port}/`);
    cleanups.unshift(() => c.close());

    // The first request starts the fill; the link is cut after 20 blocks, then the upstream goes away.
    await c.request({ code: Code.GET, options: [...pathOptions(`/${PATH}`), { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 0, more: false, szx: 6 }) }] });
    await until(() => cutter.cut, 20_000);
    await upstream.close();
    await until(() => events.some((e) => e.type === 'fill-stalled'), 30_000);
    const held = new Set(cutter.passed);
    expect(gw.stats().cache.upstreamBytes).toBe(held.size * 1024);

    // Back on the same port; the device's requests resume the fill.
    const second: BlockLog = new Map();
    const back = await startUpstream(served, upstream.port, new ServiceState(), new Map(), second);
    cleanups.unshift(() => back.close());
    cutter.cut = false;
    const got = await fetchAll(c.request, { runtime: systemRuntime, options: pathOptions(`/${PATH}`), retry: { attempts: 40, baseMs: 200, maxMs: 1000, maxRetryAfterMs: 3000 } });
    expect(Buffer.from(got.data).equals(Buffer.from(IMAGE))).toBe(true);

    // The second run asked only for what the fill did not hold, each block once, with Q-Block2.
    const resent = second.get(PATH) ?? [];
    expect(resent.filter((n) => held.has(n))).toEqual([]);
    expect([...new Set([...held, ...resent])].sort((a, b) => a - b)).toEqual([...Array(64).keys()]);
    expect(resent.length).toBe(64 - held.size);
    expect(back.blocks.get(PATH)).toBeUndefined(); // no Block2 request
    expect(gw.stats().cache).toMatchObject({ completed: 1, qblock2Fills: 1, upstreamBytes: IMAGE.length });
  });
});
