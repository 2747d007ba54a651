/**
 * Attacks from the SUIT vectors (test/fixtures/suit/eddsa, see VECTORS.md):
 * each negative envelope offered by the server is refused and the running
 * image stays, with nothing installed and the journal back to idle.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, describe, expect, it } from 'vitest';
import { powerOn, provisionDevice } from '../../src/device/device.js';
import { runUpdate } from '../../src/device/updater.js';
import { hashArea } from '../../src/flash/image.js';
import { Journal } from '../../src/flash/journal.js';
import { createLayout } from '../../src/flash/layout.js';
import { MemoryFlash } from '../../src/flash/memory.js';
import { parsePublicKey } from '../../src/suit/keys.js';
import { FakeRuntime } from '../../src/testing/fake-runtime.js';
import { hex, image, MANIFEST_URI, MemUpdateServer } from './update-helpers.js';

const DIR = join(import.meta.dirname, '../fixtures/suit/eddsa');
const read = (f: string): Uint8Array => new Uint8Array(readFileSync(join(DIR, f)));
const expected = JSON.parse(readFileSync(join(DIR, 'expected.json'), 'utf8')) as { 'vendor-id': string; 'class-id': string };
const VENDOR = Uint8Array.from(Buffer.from(expected['vendor-id'], 'hex'));
const CLASS = Uint8Array.from(Buffer.from(expected['class-id'], 'hex'));
const TRUST = { anchors: [{ name: 'vectors', publicKey: parsePublicKey(readFileSync(join(DIR, 'ed25519_public.hex'), 'utf8')) }] };
const FIRMWARE = read('firmware.bin');
const A = image(9000, 1);

let server: MemUpdateServer;
afterEach(async () => server?.close());

async function offer(vector: string, installedSeq: number) {
  server = new MemUpdateServer();
  // The vectors name coap://[::1]/fw/firmware.bin: fetched from the manifest's server by path.
  server.put('fw/firmware.bin', FIRMWARE);
  server.put('manifest.suit', read(vector));
  const flash = new MemoryFlash({ size: 80 * 1024, eraseBlockSize: 4096 });
  const layout = createLayout(flash, { slotSize: 28 * 1024 });
  await provisionDevice(flash, layout, A, installedSeq);
  const runtime = new FakeRuntime();
  const c = server.client(runtime);
  const status = await runUpdate({ flash, layout, request: c.request, manifestUri: MANIFEST_URI, runtime, trust: TRUST, vendorId: VENDOR, classId: CLASS }).finally(() => c.close());
  const p = await powerOn(flash, layout);
  return { status, p, flash, layout, served: server.servedOf('fw/firmware.bin'), journal: (await Journal.open(flash, layout)).latest() };
}

describe('SUIT attack vectors against the update client', () => {
  const cases: [string, number, string, number][] = [
    // vector, installed sequence, expected error, image blocks served
    ['NEG-bad-signature.suit', 1, 'SIGNATURE_INVALID', 0],
    ['NEG-digest-mismatch.suit', 1, 'DIGEST_MISMATCH', 0],
    ['NEG-no-auth-block.suit', 1, 'NO_SIGNATURE', 0],
    ['rollback-seq6.suit', 7, 'ROLLBACK', 0],
    ['es256-alg-7-wgkey.suit', 1, 'UNTRUSTED_KEY', 0],
    // Only detectable after the fetch: the image does not match the signed digest.
    ['NEG-image-digest-wrong.suit', 1, 'DIGEST_MISMATCH', 5],
  ];
  for (const [vector, seq, code, served] of cases) {
    it(`${vector} is refused (${code}) and the running image stays`, async () => {
      const r = await offer(vector, seq);
      expect(r.status).toMatchObject({ result: 'rejected', error: code, installedSequence: seq });
      expect(r.served).toBe(served);
      expect(r.p.boot.mode).toBe('confirmed');
      expect(r.p.boot.actions).toEqual([]);
      expect(hex(r.p.boot.image.digest)).toBe(hex(sha256(A)));
      expect(hex(await hashArea(r.flash, r.layout.primary, A.length))).toBe(hex(sha256(A)));
      expect(r.journal).toMatchObject({ phase: 'idle', installedSeq: seq });
    });
  }

  it('the valid vectors (EdDSA -8 and Ed25519 -19) install, as a control', async () => {
    for (const vector of ['eddsa-alg-8.suit', 'ed25519-alg-19.suit']) {
      const r = await offer(vector, 1);
      expect(r.status).toMatchObject({ result: 'installed', candidateSequence: 7, blocksFetched: 5 });
      expect(r.p.boot.mode).toBe('test');
      expect(hex(r.p.boot.image.digest)).toBe(hex(sha256(FIRMWARE)));
      expect(r.p.installedSequence).toBe(7);
      await server.close();
    }
  });
});
