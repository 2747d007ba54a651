/**
 * Interop of the Q-Block2 fallbacks (RFC 9177 §4.1) with libcoap 4.3.1.
 * Debian's libcoap never sends Q-Block2 from its client, even with `-L 5`
 * (COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_TRY_Q_BLOCK) or `-L 13` (also
 * COAP_BLOCK_USE_M_Q_BLOCK), and its server with `-L 5` answers our
 * Q-Block2 probe without Q-Block2, so what is checked here is that each
 * side falls back to Block2 and moves the right bytes:
 * - `coap-client-notls -L 5` and `-L 13`, Confirmable and with `-N`, fetch
 *   1 MiB from `coapfw serve`'s file server (SHA-256 of what they wrote);
 * - `coapfw get` fetches from `coap-server-notls -L 5 -d 5` (a file libcoap's
 *   own client PUT there) and says it used Block2.
 * Q-Block2 itself is checked against RFC 9177's figures
 * (test/blockwise/qblock2-rfc-figures.test.ts) and between our client and
 * server under loss (test/blockwise/qblock2-loopback.test.ts).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../src/server/serve.js';
import { COAP_CLIENT, describeWithBinaries, fixtureBytes, killAll, libcoapMissing, putToLibcoap, run, sha256File, sha256Hex, startLibcoapServer } from './helpers.js';

const MIB = 1024 * 1024;
const CLI = resolve('dist/src/cli/bin.js');

describeWithBinaries('Q-Block2 fallbacks with libcoap 4.3.1', libcoapMissing(), () => {
  let dir: string;
  const image = fixtureBytes(MIB, 91);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'coapfw-qb2-interop-'));
    await writeFile(join(dir, 'fw.bin'), image);
  });

  afterAll(async () => {
    killAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('coap-client-notls -L from coapfw serve', () => {
    let server: FileServer;
    let files: string;

    beforeAll(async () => {
      files = await mkdtemp(join(tmpdir(), 'coapfw-qb2-files-'));
      await writeFile(join(files, 'fw.bin'), image);
      server = await startFileServer({ dir: files, host: '127.0.0.1', port: 0, refreshMs: 0 });
    });

    afterAll(async () => {
      await server?.close();
      if (files) await rm(files, { recursive: true, force: true });
    });

    for (const flags of [['-L', '5'], ['-L', '13'], ['-L', '5', '-N'], ['-L', '13', '-N']]) {
      it(`${flags.join(' ')} gets 1 MiB with the right SHA-256`, { timeout: 90_000 }, async () => {
        const out = join(dir, `client${flags.join('')}.bin`);
        const r = await run(COAP_CLIENT, [...flags, '-B', '60', '-b', '1024', '-m', 'get', '-o', out, `coap://127.0.0.1:${server.address().port}/files/fw.bin`], 80_000);
        expect(r.timedOut).toBe(false);
        // coap-client exits 0 even when its output is short: the hash is the proof.
        expect(await sha256File(out)).toBe(sha256Hex(image));
      });
    }
  });

  describe('coapfw get from coap-server-notls -L 5 -d 5', () => {
    let server: Awaited<ReturnType<typeof startLibcoapServer>>;

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does)`);
      server = await startLibcoapServer('127.0.0.1', ['-L', '5', '-d', '5']);
      const put = await putToLibcoap(server.uri('fw.bin'), join(dir, 'fw.bin'));
      if (put.code !== 0) throw new Error(`PUT to coap-server-notls -L 5 failed: ${put.stderr}`);
    });

    afterAll(async () => {
      await server?.stop();
    });

    it('falls back to Block2 and gets the right bytes', { timeout: 90_000 }, async () => {
      const out = join(dir, 'get.bin');
      const r = await run(process.execPath, [CLI, 'get', server.uri('fw.bin'), '-o', out, '--json'], 80_000);
      expect(r.code).toBe(0);
      const result = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { result: string; bytes: number; mode: string };
      expect(result).toMatchObject({ result: 'ok', bytes: MIB, mode: 'block2' });
      expect(await sha256File(out)).toBe(sha256Hex(image));
    });
  });
});
