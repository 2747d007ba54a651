/** `coapfw device ...` in-process against the file server on loopback. */
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureIo } from '../helpers/cli-io.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { decodeMessage } from '../../src/codec/message.js';
import { Code, OptionNumber } from '../../src/codec/numbers.js';
import { getOption } from '../../src/codec/options.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import type { Transport } from '../../src/core/transport.js';
import { UdpTransport } from '../../src/transport/udp.js';
import { createEnvelope } from '../../src/suit/create.js';
import { privateKeyFromSecret } from '../../src/suit/keys.js';
import { parsePskKey, PskStore } from '../../src/transport/dtls/psk-store.js';
import { CLASS, hex, image, KEY, VENDOR } from './update-helpers.js';


async function run(args: string[]) {
  const c = captureIo();
  const code = await main(['device', ...args], c.io);
  const lines = c.out().trim().split('\n');
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(lines.at(-1)!) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { code, json, out: c.out(), err: c.err() };
}

const IMG = image(20_000, 3);
let dir: string;
let server: FileServer;
let base: string;
let ids: string[];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-device-cli-'));
  await mkdir(join(dir, 'srv'));
  const digest = sha256(IMG);
  await writeFile(join(dir, 'srv', 'app.bin'), IMG);
  const desc = { vendorId: VENDOR, classId: CLASS, uri: `/fw/sha256/${hex(digest)}`, digest, size: IMG.length };
  await writeFile(join(dir, 'srv', 'app.suit'), createEnvelope({ ...desc, sequence: 5 }, [KEY]));
  const stranger = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(9));
  await writeFile(join(dir, 'srv', 'evil.suit'), createEnvelope({ ...desc, sequence: 6 }, [stranger]));
  await writeFile(join(dir, 'pub.hex'), hex(KEY.publicKey.bytes));
  server = await startFileServer({ dir: join(dir, 'srv'), host: '127.0.0.1', port: 0, refreshMs: 0 });
  base = `coap://127.0.0.1:${server.address().port}/files`;
  ids = ['--vendor-id', hex(VENDOR), '--class-id', hex(CLASS), '--trust', join(dir, 'pub.hex')];
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('coapfw device', () => {
  it('prints help, and refuses bad usage with exit code 2 and one line', async () => {
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/coapfw device update MANIFEST_URI --flash FILE \[--trust PUBFILE \| --trust-state FILE\]/);
    for (const args of [['update', `${base}/app.suit`], ['update', '--flash', join(dir, 'x.bin')], ['frob', '--flash', join(dir, 'x.bin')], ['update', `${base}/app.suit`, '--flash', join(dir, 'x.bin')]]) {
      const r = await run(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trim().split('\n')).toHaveLength(1);
      expect(r.err).toMatch(/^coapfw device: .*\(see 'coapfw device --help'\)\n$/);
    }
    expect(existsSync(join(dir, 'x.bin'))).toBe(false); // arguments are checked before the flash file is created
  });

  it('--json -v: the update events as JSON lines before the result line, nothing on stderr', async () => {
    const r = await run(['update', `${base}/app.suit`, '--flash', join(dir, 'dev7.bin'), ...ids, '--json', '-v', '--no-report']);
    expect(r.code, r.err).toBe(0);
    const events = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.at(-1)).toMatchObject({ result: 'installed', installedSequence: 5 });
    const names = events.slice(0, -1).map((e) => e.event);
    expect(names).toContain('envelope');
    expect(names.filter((n) => n === 'state').length).toBeGreaterThan(3); // check, verify, download, ... (-v)
    expect(events.find((e) => e.event === 'envelope')).toMatchObject({ sequence: 5, imageSize: IMG.length });
    expect(names).not.toContain('block'); // every block only with -vv
    expect(r.err).toBe('');
  });

  it('status of a missing flash file is a one-line error, exit 1', async () => {
    const r = await run(['status', '--flash', join(dir, 'nope.bin')]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^coapfw device: .*\[IO_ERROR\]\n$/);
  });

  it('update provisions a new flash file, installs, boots the test image and confirms it; then up to date', async () => {
    const flash = join(dir, 'dev1.bin');
    const r = await run(['update', `${base}/app.suit`, '--flash', flash, ...ids, '--flash-size', String(256 * 1024)]);
    expect(r.code, r.err).toBe(0);
    expect(r.json).toMatchObject({ result: 'installed', installedSequence: 5, blocksFetched: 20, blocksResumed: 0, bootMode: 'test', boot: 'confirmed', running: hex(sha256(IMG)), provisioned: true });
    // The last report is the one after the reboot: confirmed. Over plain coap:// under a fresh pseudonym, never the device id (device/privacy.ts).
    expect(server.status.get('sim-dev1.bin')).toBeUndefined();
    expect(server.status.list().filter((s) => s.device.startsWith('anon-')).map((s) => s.report)).toContainEqual(expect.objectContaining({ result: 'confirmed', installedSequence: 5, running: hex(sha256(IMG)) }));
    const st = await run(['status', '--flash', flash]);
    expect(st.json).toMatchObject({ primaryMode: 'confirmed', pending: false, running: hex(sha256(IMG)), journal: { phase: 'idle', installedSeq: 5 } });
    const again = await run(['update', `${base}/app.suit`, '--flash', flash, ...ids]);
    expect(again.code).toBe(0);
    expect(again.json).toMatchObject({ result: 'up-to-date', blocksFetched: 0, provisioned: false });
    const wrongSize = await run(['status', '--flash', flash, '--flash-size', String(512 * 1024)]);
    expect(wrongSize.code).toBe(1);
    expect(wrongSize.err).toMatch(/\[INVALID_ARGUMENT\]/);
  });

  it('a manifest signed by another key is rejected with exit 1 and the factory image keeps running', async () => {
    const flash = join(dir, 'dev2.bin');
    const r = await run(['update', `${base}/evil.suit`, '--flash', flash, ...ids, '--no-report']);
    expect(r.code).toBe(1);
    // Under the trust store (verifyFirmware): no signature by a key of the device's trust set.
    expect(r.json).toMatchObject({ result: 'rejected', error: 'UNTRUSTED_KEY', installedSequence: 0, bootMode: 'confirmed' });
    expect(server.status.get('sim-dev2.bin')).toBeUndefined();
  });

  it('a power-on that fails (damaged running image) still prints the JSON line and POSTs the status', async () => {
    const flash = join(dir, 'dev-damaged.bin');
    expect((await run(['boot', '--flash', flash])).code).toBe(0); // provisioned, confirmed
    const { FileFlash } = await import('../../src/flash/file.js');
    const { simulatedLayout } = await import('../../src/device/file-device.js');
    const f = await FileFlash.open(flash, { size: 1024 * 1024 });
    await f.erase(simulatedLayout(f).primary.offset, 4096);
    await f.close();
    const r = await run(['update', `${base}/app.suit`, '--flash', flash, ...ids, '--status-path', '/status/dev-damaged']);
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ result: 'failed', error: 'NO_BOOTABLE_IMAGE', installedSequence: 0, bootMode: null, running: null });
    expect(server.status.get('dev-damaged')?.report).toMatchObject({ result: 'failed', error: 'NO_BOOTABLE_IMAGE' });
  });

  it('boot --no-confirm leaves the test image unconfirmed; the next boot reverts it; update installs it again', async () => {
    const flash = join(dir, 'dev3.bin');
    const r = await run(['update', `${base}/app.suit`, '--flash', flash, ...ids, '--no-reboot', '--status-path', '/status/dev-3']);
    expect(r.json).toMatchObject({ result: 'installed', installedSequence: 0, bootMode: 'confirmed' });
    expect(server.status.get('dev-3')?.report).toMatchObject({ result: 'installed' });
    expect((await run(['boot', '--flash', flash, '--no-confirm'])).json).toMatchObject({ mode: 'test', outcome: 'unconfirmed', installedSequence: 0 });
    expect((await run(['boot', '--flash', flash])).json).toMatchObject({ mode: 'reverted', outcome: 'reverted', installedSequence: 0 });
    const again = await run(['update', `${base}/app.suit`, '--flash', flash, ...ids]);
    // The image is still in the secondary slot: installed again without a download.
    expect(again.json).toMatchObject({ result: 'installed', blocksFetched: 0, installedSequence: 5, boot: 'confirmed' });
  });

  it('device confirm confirms a running test image; the next boot keeps it and records its sequence', async () => {
    const flash = join(dir, 'dev6.bin');
    expect((await run(['update', `${base}/app.suit`, '--flash', flash, ...ids, '--no-reboot', '--no-report'])).json).toMatchObject({ result: 'installed' });
    expect((await run(['boot', '--flash', flash, '--no-confirm'])).json).toMatchObject({ mode: 'test', outcome: 'unconfirmed' });
    expect((await run(['confirm', '--flash', flash])).json).toEqual({ confirmed: true, changed: true });
    expect((await run(['confirm', '--flash', flash])).json).toEqual({ confirmed: true, changed: false });
    expect((await run(['boot', '--flash', flash])).json).toMatchObject({ mode: 'confirmed', outcome: 'confirmed', installedSequence: 5, running: hex(sha256(IMG)) });
  });

  it('updates over coaps:// with a PSK (DTLS 1.2), and says so in one line when credentials are missing', { timeout: 30_000 }, async () => {
    const psk = '0x00112233445566778899aabbccddeeff';
    const secure = await startFileServer({ dir: join(dir, 'srv'), coap: false, refreshMs: 0, secure: { psk: PskStore.fromEntries([['dev-4', parsePskKey(psk)]]), host: '127.0.0.1', port: 0 } });
    try {
      const uri = `coaps://127.0.0.1:${secure.dtls!.address().port}/files/app.suit`;
      const flash = join(dir, 'dev4.bin');
      const r = await run(['update', uri, '--flash', flash, ...ids, '--psk-identity', 'dev-4', '--psk-key', psk, '--device-id', 'dev-4']);
      expect(r.code, r.err).toBe(0);
      expect(r.json).toMatchObject({ result: 'installed', installedSequence: 5, boot: 'confirmed' });
      expect(secure.status.get('dev-4')?.report).toMatchObject({ result: 'confirmed', installedSequence: 5 });
      const noKey = await run(['update', uri, '--flash', flash, ...ids]);
      // Missing or bad credentials are usage errors (exit 2), as in `coapfw get`.
      expect(noKey.code).toBe(2);
      expect(noKey.err).toMatch(/coaps:\/\/ needs --credentials FILE, or --psk-identity ID and --psk-key KEY/);
      const badKey = await run(['update', uri, '--flash', flash, ...ids, '--psk-identity', 'dev-4', '--psk-key', '0xzz']);
      expect(badKey.code, badKey.err).toBe(2);
      expect(badKey.err).toMatch(/^coapfw device: --psk-key: expected an even number of hex digits/);
      const plain = await run(['update', `${base}/app.suit`, '--flash', flash, ...ids, '--psk-identity', 'x', '--psk-key', psk]);
      expect(plain.code).toBe(2);
    } finally {
      await secure.close();
    }
  });

  it('updates through a server with the Echo amplification guard on (RFC 9175): the client answers the 4.01 challenge', async () => {
    const udp = await UdpTransport.bind({ host: '127.0.0.1', port: 0 });
    let challenges = 0;
    const watch: Transport = {
      send: (data, peer) => {
        const m = decodeMessage(data);
        if (m.code === Code.UNAUTHORIZED && getOption(m, OptionNumber.ECHO) !== undefined) challenges++;
        return udp.send(data, peer);
      },
      onMessage: (h) => udp.onMessage(h),
      address: () => udp.address(),
      close: () => udp.close(),
    };
    const guarded = await startFileServer({ dir: join(dir, 'srv'), transport: watch, refreshMs: 0, echo: true });
    try {
      const r = await run(['update', `coap://127.0.0.1:${guarded.address().port}/files/app.suit`, '--flash', join(dir, 'dev5.bin'), ...ids]);
      expect(r.code, r.err).toBe(0);
      expect(r.json).toMatchObject({ result: 'installed', installedSequence: 5, blocksFetched: 20, boot: 'confirmed' });
      expect(challenges).toBeGreaterThanOrEqual(1);
    } finally {
      await guarded.close();
    }
  });
});
