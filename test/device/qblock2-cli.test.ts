/**
 * `coapfw device update` with Q-Block2 (RFC 9177) against the file server
 * on loopback, and `--no-qblock2` (the flag `coapfw get` has) keeping it to
 * Block2: the mode is said once, as a 'transfer' event (-v), and image
 * requests are counted at the server.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { tapTransport } from '../../src/testing/tap.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { captureIo } from '../helpers/cli-io.js';
import { CLASS, hex, image, isImageRequest, VENDOR, releaseDir } from './update-helpers.js';

const IMG = image(40 * 1024, 4); // 40 blocks of 1 KiB
const BLOCKS = 40;
let dir: string;
let server: FileServer;
let uri: string;
let imageRequests = 0;
let ids: string[];

beforeAll(async () => {
  dir = await releaseDir('coapfw-device-qb2-cli-', IMG, 3);
  const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
  server = await startFileServer({ dir: join(dir, 'srv'), transport: tapTransport(udp, { received: (d) => void (isImageRequest(d) && imageRequests++) }), refreshMs: 0 });
  uri = `coap://127.0.0.1:${server.address().port}/files/app.suit`;
  ids = ['--vendor-id', hex(VENDOR), '--class-id', hex(CLASS), '--trust', join(dir, 'pub.hex'), '--no-report'];
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** `coapfw device update` with --json -v: its events and result line, and the image requests it cost. */
async function update(flash: string, extra: string[] = []) {
  const before = imageRequests;
  const c = captureIo();
  const code = await main(['device', 'update', uri, '--flash', join(dir, flash), ...ids, '--json', '-v', ...extra], c.io);
  const lines = c.out().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, err: c.err(), result: lines.at(-1)!, events: lines.slice(0, -1), requests: imageRequests - before };
}

describe('coapfw device update and Q-Block2', () => {
  it('by default: the image comes with Q-Block2, said once, in far fewer requests than blocks', async () => {
    const r = await update('q.bin');
    expect(r.code, r.err).toBe(0);
    expect(r.result).toMatchObject({ result: 'installed', installedSequence: 3, blocksFetched: BLOCKS, boot: 'confirmed', running: hex(sha256(IMG)) });
    expect(r.events.filter((e) => e.event === 'transfer')).toEqual([{ event: 'transfer', type: 'transfer', image: 0, mode: 'qblock2' }]);
    expect(r.requests).toBeLessThan(BLOCKS / 4);
  });

  it('--no-qblock2: Block2 only, one request per block', async () => {
    const r = await update('b.bin', ['--no-qblock2']);
    expect(r.code, r.err).toBe(0);
    expect(r.result).toMatchObject({ result: 'installed', installedSequence: 3, blocksFetched: BLOCKS, boot: 'confirmed' });
    expect(r.events.filter((e) => e.event === 'transfer')).toEqual([{ event: 'transfer', type: 'transfer', image: 0, mode: 'block2' }]);
    expect(r.requests).toBe(BLOCKS);
  });

  it('text output: -v says the mode on stderr; both helps name --no-qblock2', async () => {
    const c = captureIo();
    const code = await main(['device', 'update', uri, '--flash', join(dir, 't.bin'), ...ids, '-v'], c.io);
    expect(code, c.err()).toBe(0);
    expect(c.err()).toMatch(/^coapfw device: the image came with Q-Block2 \(RFC 9177\)$/m);
    for (const args of [['device', '--help'], ['device', 'run', '--help']]) {
      const h = captureIo();
      expect(await main(args, h.io)).toBe(0);
      expect(h.out()).toMatch(/--no-qblock2 +block-wise transfer \(RFC 7959\) only/);
    }
  });
});
