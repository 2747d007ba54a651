/**
 * `coapfw get --credentials FILE`: the coaps key from a file only its owner
 * can read, instead of --psk-key on the command line (visible in ps).
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { PskStore } from '../../src/transport/dtls/psk-store.js';
import { captureIo } from '../helpers/cli-io.js';

let dir: string;
let server: FileServer;
let uri: string;
const KEY = '00112233445566778899aabbccddeeff';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-cred-'));
  await writeFile(join(dir, 'fw.bin'), 'firmware bytes');
  server = await startFileServer({ dir, coap: false, refreshMs: 0, secure: { psk: PskStore.parse(`dev-1 ${KEY}\n`), host: '127.0.0.1', port: 0 } });
  uri = `coaps://127.0.0.1:${server.dtls!.address().port}/files/fw.bin`;
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

async function get(...args: string[]): Promise<{ code: number; err: string }> {
  const c = captureIo();
  const code = await main(['get', uri, ...args], c.io);
  return { code, err: c.err() };
}

async function credentials(name: string, text: string, mode = 0o600): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  await chmod(path, mode);
  return path;
}

describe('get --credentials', () => {
  it('reads the identity and key from a 0600 file', async () => {
    const file = await credentials('one', `# this board\ndev-1 0x${KEY}\n`);
    const out = join(dir, 'out1.bin');
    const r = await get('--credentials', file, '-o', out);
    expect(r.code, r.err).toBe(0);
    expect(await readFile(out, 'utf8')).toBe('firmware bytes');
  });

  it('picks one of several identities with --psk-identity, and asks when there are several', async () => {
    const file = await credentials('two', `other hex:${'ff'.repeat(16)}\ndev-1 0x${KEY}\n`);
    const r = await get('--credentials', file, '--psk-identity', 'dev-1', '-o', join(dir, 'out2.bin'));
    expect(r.code, r.err).toBe(0);
    const ambiguous = await get('--credentials', file, '-o', join(dir, 'out3.bin'));
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.err).toMatch(/holds 2 identities: pick one with --psk-identity/);
    const missing = await get('--credentials', file, '--psk-identity', 'nobody', '-o', join(dir, 'out4.bin'));
    expect(missing.err).toMatch(/--psk-identity nobody: not in/);
  });

  it('refuses a file others can read, a malformed one, and a key given twice', async () => {
    const open = await credentials('open', `dev-1 0x${KEY}\n`, 0o644);
    const r = await get('--credentials', open, '-o', join(dir, 'x.bin'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/readable by others \(mode 644\); chmod 600 .* \[CONFIG_INVALID\]/);
    const bad = await credentials('bad', 'dev-1\n');
    expect((await get('--credentials', bad, '-o', join(dir, 'y.bin'))).err).toMatch(/bad:1: expected "identity key"/);
    const both = await credentials('both', `dev-1 0x${KEY}\n`);
    expect((await get('--credentials', both, '--psk-key', 'x', '-o', join(dir, 'z.bin'))).code).toBe(2);
  });

  it('is refused for coap:// URIs, where it would go unused', async () => {
    const file = await credentials('plain', `dev-1 0x${KEY}\n`);
    const c = captureIo();
    expect(await main(['get', 'coap://127.0.0.1:9/x', '--credentials', file], c.io)).toBe(2);
    expect(c.err()).toMatch(/are for coaps:\/\/ URIs/);
  });
});
