/**
 * The gateway end to end on loopback, in front of a test upstream: the
 * mirror and the forward proxy (RFC 7252 §5.7.2 rules), the image cache
 * (each block fetched upstream once), manifests with revalidation and
 * verification on behalf of devices, and registrations and reports relayed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fetchAll } from '../../src/blockwise/fetch.js';
import { openClient, type CoapClient } from '../../src/client/open.js';
import { encodeBlock } from '../../src/codec/block.js';
import type { CoapOption } from '../../src/codec/message.js';
import { Code, ContentFormat, OptionNumber } from '../../src/codec/numbers.js';
import { getOption, pathOptions, stringOption, uintOption } from '../../src/codec/options.js';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import type { GatewayOptions } from '../../src/gateway/options.js';
import { decodeBody, encodeBody } from '../../src/gateway/body.js';
import { systemRuntime } from '../../src/transport/runtime.js';
import { bufferSource } from '../../src/blockwise/source.js';
import { serveBlock2 } from '../../src/blockwise/serve.js';
import { image, tempDir } from './helpers.js';
import { CLASS_HEX, envelope, OTHER_KEY, startUpstream, TRUST, type TestUpstream } from './upstream.js';

let dir: string;
let cleanup: Array<() => Promise<void>> = [];
let upstream: TestUpstream;
const img = image(20_000, 7);
const hex = bytesToHex(sha256(img));

beforeEach(async () => {
  const t = await tempDir('gw');
  dir = t.dir;
  cleanup = [t.remove];
  await mkdir(join(dir, 'served'));
  await writeFile(join(dir, 'served', 'fw.bin'), img);
  upstream = await startUpstream(join(dir, 'served'));
  cleanup.unshift(() => upstream.close());
});

afterEach(async () => {
  for (const c of cleanup) await c();
});

async function gateway(options: Partial<GatewayOptions> = {}): Promise<{ gw: Gateway; client: CoapClient }> {
  const gw = await startGateway({ upstream: upstream.uri, cacheDir: join(dir, 'gw'), host: '127.0.0.1', port: 0, ...options });
  cleanup.unshift(() => gw.close());
  const client = await openClient(`coap://127.0.0.1:${gw.address().port}/`);
  cleanup.unshift(() => client.close());
  return { gw, client };
}

const get = (c: CoapClient, options: CoapOption[]) => c.request({ code: Code.GET, options }, {});

describe('gateway: mirror and cache', () => {
  it('serves an image by content address, fetching each block upstream once for two devices', async () => {
    const { gw, client } = await gateway();
    const a = await fetchAll(client.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${hex}`), retry: { attempts: 20 } });
    const other = await openClient(`coap://127.0.0.1:${gw.address().port}/`);
    cleanup.unshift(() => other.close());
    const b = await fetchAll(other.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${hex}`), retry: { attempts: 20 } });
    expect(Buffer.from(a.data).equals(Buffer.from(img))).toBe(true);
    expect(Buffer.from(b.data).equals(Buffer.from(img))).toBe(true);
    expect(a.etag && bytesToHex(a.etag)).toBe(hex.slice(0, 16));
    // The file server does Q-Block2 (RFC 9177): the fill took it, and the upstream sent each block once.
    expect(upstream.blocks.get(`fw/sha256/${hex}`)).toBeUndefined();
    expect([...(upstream.qblocks.get(`fw/sha256/${hex}`) ?? [])].sort((x, y) => x - y)).toEqual([...Array(20).keys()]);
    expect(gw.stats().cache).toMatchObject({ completed: 1, qblock2Fills: 1, block2Fills: 0 });
  });

  it('relays other paths (files by name) through the revalidating cache, with the remaining freshness as Max-Age', async () => {
    const { gw, client } = await gateway();
    const r = await fetchAll(client.request, { runtime: systemRuntime, options: pathOptions('/files/fw.bin') });
    expect(Buffer.from(r.data).equals(Buffer.from(img))).toBe(true);
    const again = await get(client, [...pathOptions('/files/fw.bin'), { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 3, more: false, szx: 6 }) }]);
    expect(again.code).toBe(Code.CONTENT);
    expect(Buffer.from(again.payload).equals(Buffer.from(img.subarray(3072, 4096)))).toBe(true);
    expect(getOption(again, OptionNumber.MAX_AGE)).toBeDefined();
    expect(gw.stats().validated.fresh).toBeGreaterThan(0);
    // Validation by the device (RFC 7252 §5.10.6.2): its ETag is current, 2.03 without a payload.
    const valid = await get(client, [...pathOptions('/files/fw.bin'), { number: OptionNumber.ETAG, value: r.etag! }]);
    expect(valid.code).toBe(Code.VALID);
    expect(valid.payload.length).toBe(0);
  });

  it('answers 4.04 from the upstream, and 5.04 when the upstream does not answer', async () => {
    const { client } = await gateway({ responseTimeoutMs: 500, upstreamClient: { params: { ackTimeoutMs: 100, maxRetransmit: 1 } } });
    expect((await get(client, pathOptions('/files/nope'))).code).toBe(Code.NOT_FOUND);
    await upstream.close();
    const r = await get(client, pathOptions('/files/other'));
    expect([Code.GATEWAY_TIMEOUT, Code.BAD_GATEWAY]).toContain(r.code);
  });
});

describe('gateway: forward proxy (RFC 7252 §5.7.2)', () => {
  it('fetches a file through Proxy-Uri and through Proxy-Scheme + Uri-Host/Uri-Port', async () => {
    const { client } = await gateway();
    const proxyUri = stringOption(OptionNumber.PROXY_URI, `${upstream.uri}/files/fw.bin`);
    const viaUri = await fetchAll(client.request, { runtime: systemRuntime, options: [proxyUri] });
    expect(Buffer.from(viaUri.data).equals(Buffer.from(img))).toBe(true);
    const scheme: CoapOption[] = [
      stringOption(OptionNumber.URI_HOST, '127.0.0.1'),
      uintOption(OptionNumber.URI_PORT, upstream.port),
      ...pathOptions(`/fw/sha256/${hex}`),
      stringOption(OptionNumber.PROXY_SCHEME, 'coap'),
    ];
    const viaScheme = await fetchAll(client.request, { runtime: systemRuntime, options: scheme, retry: { attempts: 20 } });
    expect(Buffer.from(viaScheme.data).equals(Buffer.from(img))).toBe(true);
  });

  it('5.05 for an origin it may not reach and for other schemes, 4.00 for a Proxy-Uri that is no URI, 4.02 for an unknown unsafe option', async () => {
    const { client } = await gateway();
    const code = async (options: CoapOption[]): Promise<number> => (await get(client, options)).code;
    expect(await code([stringOption(OptionNumber.PROXY_URI, 'coap://192.0.2.99/x')])).toBe(Code.PROXYING_NOT_SUPPORTED);
    expect(await code([stringOption(OptionNumber.PROXY_URI, 'http://127.0.0.1/x')])).toBe(Code.PROXYING_NOT_SUPPORTED);
    expect(await code([stringOption(OptionNumber.PROXY_SCHEME, 'http'), stringOption(OptionNumber.URI_HOST, '127.0.0.1')])).toBe(Code.PROXYING_NOT_SUPPORTED);
    expect(await code([stringOption(OptionNumber.PROXY_SCHEME, 'coap')])).toBe(Code.PROXYING_NOT_SUPPORTED);
    expect(await code([stringOption(OptionNumber.PROXY_URI, '/relative')])).toBe(Code.BAD_REQUEST);
    // Option 2050: unsafe (bit 1) and elective: unknown to the proxy, so it must not forward it (§5.7.1).
    expect(await code([stringOption(OptionNumber.PROXY_URI, `${upstream.uri}/files/fw.bin`), { number: 2050, value: Uint8Array.of(1) }])).toBe(Code.BAD_OPTION);
    // Option 2052: safe-to-forward and unknown: forwarded, the request succeeds.
    expect(await code([stringOption(OptionNumber.PROXY_URI, `${upstream.uri}/files/nope`), { number: 2052, value: Uint8Array.of(1) }])).toBe(Code.NOT_FOUND);
  });

  it('reaches another origin only when it is allowed', async () => {
    const other = await startUpstream(join(dir, 'served'));
    cleanup.unshift(() => other.close());
    const { client } = await gateway({ proxyOrigins: [other.uri] });
    const r = await fetchAll(client.request, { runtime: systemRuntime, options: [stringOption(OptionNumber.PROXY_URI, `${other.uri}/files/fw.bin`)] });
    expect(Buffer.from(r.data).equals(Buffer.from(img))).toBe(true);
    expect(other.blocks.get('files/fw.bin')?.length).toBeGreaterThan(0);
  });
});

describe('gateway: manifests, verified on behalf of devices', () => {
  const fetchManifest = async (c: CoapClient, classHex = CLASS_HEX): Promise<{ code: number; data?: Uint8Array }> => {
    try {
      const r = await fetchAll(c.request, { runtime: systemRuntime, options: pathOptions(`/m/${classHex}`), retry: { attempts: 1 } });
      return { code: Code.CONTENT, data: r.data };
    } catch (e) {
      return { code: (e as { responseCode: number }).responseCode };
    }
  };

  it('relays a valid envelope; refuses and counts one signed by another key, a rollback, another class; remembers the rollback line across a restart', async () => {
    upstream.state.manifestMaxAge = 0; // every request revalidates: each new upstream envelope is checked
    const opts = { verify: { trust: TRUST } };
    const { gw, client } = await gateway(opts);
    upstream.state.manifests.set(CLASS_HEX, envelope(img, 5));
    const ok = await fetchManifest(client);
    expect(ok.code).toBe(Code.CONTENT);
    expect(Buffer.from(ok.data!).equals(Buffer.from(envelope(img, 5)))).toBe(true); // Ed25519 signatures are deterministic
    upstream.state.manifests.set(CLASS_HEX, envelope(img, 6, OTHER_KEY));
    expect((await fetchManifest(client)).code).toBe(Code.BAD_GATEWAY);
    upstream.state.manifests.set(CLASS_HEX, envelope(img, 4));
    expect((await fetchManifest(client)).code).toBe(Code.BAD_GATEWAY);
    upstream.state.manifests.set(CLASS_HEX, envelope(img, 7));
    expect((await fetchManifest(client)).code).toBe(Code.CONTENT);
    const otherClass = 'aa'.repeat(16);
    upstream.state.manifests.set(otherClass, envelope(img, 8)); // an envelope for CLASS served under another class
    expect((await fetchManifest(client, otherClass)).code).toBe(Code.BAD_GATEWAY);
    const v = gw.stats().verification!;
    expect(v.passed).toBe(2);
    expect(v.refused).toMatchObject({ signature: 1, rollback: 1, class: 1 });
    expect(gw.guard!.lastRelayed(CLASS_HEX)).toBe(7n);
    await gw.close();
    // After a restart the gateway still refuses what is below what it relayed.
    const again = await gateway(opts);
    upstream.state.manifests.set(CLASS_HEX, envelope(img, 6));
    expect((await fetchManifest(again.client)).code).toBe(Code.BAD_GATEWAY);
    expect(again.gw.stats().verification!.refused.rollback).toBe(1);
  });

  it('refuses an envelope fetched by content address when it fails verification: never served, counted', async () => {
    const { gw, client } = await gateway({ verify: { trust: TRUST } });
    const bad = envelope(img, 9, OTHER_KEY);
    const badHex = bytesToHex(sha256(bad));
    await writeFile(join(dir, 'served', 'bad.suit'), bad);
    await upstream.server.repo.refresh();
    const r = await fetchAll(client.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${badHex}`), retry: { attempts: 10 } }).catch((e: { responseCode?: number }) => e);
    expect((r as { responseCode?: number }).responseCode).toBe(Code.BAD_GATEWAY);
    expect(gw.stats().cache.refused).toBe(1);
    expect(gw.stats().verification!.refused.signature).toBe(1);
    expect(gw.cache.has(badHex)).toBe(false);
  });
});

describe('gateway: a hostile upstream', () => {
  it('bytes that do not match the content address: no device gets the image, the fill is counted and discarded', async () => {
    const { gw, client } = await gateway();
    const claimed = image(6000, 99);
    const claimedHex = bytesToHex(sha256(claimed));
    const lie = Uint8Array.from(claimed);
    lie[5999] ^= 1;
    upstream.state.overrides.set(`fw/sha256/${claimedHex}`, (req) => serveBlock2(req.message, bufferSource(lie)));
    const r = await fetchAll(client.request, { runtime: systemRuntime, options: pathOptions(`/fw/sha256/${claimedHex}`), retry: { attempts: 10 } }).catch((e: unknown) => e);
    expect((r as { responseCode?: number }).responseCode).toBe(Code.BAD_GATEWAY);
    expect(gw.stats().cache.mismatches).toBe(1);
    expect(gw.cache.has(claimedHex)).toBe(false);
    // The last block was never handed out: a device that asks for it directly gets 5.02, not the bytes.
    const last = await get(client, [...pathOptions(`/fw/sha256/${claimedHex}`), { number: OptionNumber.BLOCK2, value: encodeBlock({ num: 5, more: false, szx: 6 }) }]);
    expect(last.code).toBe(Code.BAD_GATEWAY);
  });

  it('a representation whose ETag changes on every block is refused after the retries, and counted', async () => {
    const { gw, client } = await gateway();
    const doc = image(5000, 98);
    let n = 0;
    upstream.state.overrides.set('files/changing.bin', (req) => serveBlock2(req.message, bufferSource(doc, { etag: Uint8Array.of(n++ & 0xff, 1) })));
    const r = await get(client, pathOptions('/files/changing.bin'));
    expect(r.code).toBe(Code.BAD_GATEWAY);
    expect(gw.stats().validated.etagChanges).toBe(3);
    expect(gw.stats().validated.refused).toBe(1);
  });
});

describe('gateway: registrations and reports', () => {
  it('relays a registration with the upstream answer and forwards reports in order', async () => {
    const { gw, client } = await gateway();
    const reg = await client.request({ code: Code.POST, options: [...pathOptions('/d/dev-1'), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.CBOR)], payload: encodeBody({ vendor: 'v', class: CLASS_HEX, seq: 1, mode: 'client' }, ContentFormat.CBOR) }, {});
    expect(reg.code).toBe(Code.CHANGED);
    expect(decodeBody(reg.payload, ContentFormat.CBOR)).toMatchObject({ id: 'dev-1', rseq: 0, cmd: '/d/dev-1/c' });
    for (const rseq of [1, 2, 3]) {
      const r = await client.request({ code: Code.POST, options: [...pathOptions('/d/dev-1/r'), uintOption(OptionNumber.CONTENT_FORMAT, ContentFormat.JSON)], payload: encodeBody({ rseq, state: 'downloading' }, ContentFormat.JSON) }, {});
      expect(r.code).toBe(Code.CHANGED);
    }
    const repeat = await client.request({ code: Code.POST, options: pathOptions('/d/dev-1/r'), payload: encodeBody({ rseq: 2, state: 'downloading' }, ContentFormat.CBOR) }, {});
    expect(repeat.code).toBe(Code.CONFLICT);
    await gw.flush();
    expect(upstream.state.accepted.map((a) => a.rseq)).toEqual([1, 2, 3]);
    expect(gw.stats().queue.pending).toBe(0);
  });
});
