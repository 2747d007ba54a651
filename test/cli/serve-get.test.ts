import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureIo } from '../helpers/cli-io.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { startFileServer, type FileServer } from '../../src/server/serve.js';


let dir: string;
let server: FileServer;
const data = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-cli-'));
  await writeFile(join(dir, 'fw.bin'), data);
  server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('coapfw get / serve', () => {
  it('fetches a file and reports bytes and blocks; quiet progress when not a TTY', async () => {
    const c = captureIo();
    const out = join(dir, 'got.bin');
    const code = await main(['get', `coap://127.0.0.1:${server.address().port}/files/fw.bin`, '-o', out, '--block-size', '256'], c.io);
    expect(code).toBe(0);
    expect(new Uint8Array(await readFile(out))).toEqual(data);
    expect(c.err()).toBe(`${out}: 5000 bytes in 20 blocks (Q-Block2)\n`);
  });

  it('exits 1 with a one-line error for a missing file', async () => {
    const c = captureIo();
    const code = await main(['get', `coap://127.0.0.1:${server.address().port}/files/nope`, '-o', join(dir, 'x')], c.io);
    expect(code).toBe(1);
    expect(c.err().trim().split('\n')).toHaveLength(1);
    expect(c.err()).toMatch(/4\.04/);
  });

  it('exits 2 on usage errors with a one-line hint', async () => {
    for (const args of [['get'], ['get', 'coap://h/x', '--block-size', '100'], ['get', 'http://h/x'], ['get', 'coap://h/a/%2E%2E'], ['serve'], ['serve', dir, '--port', 'x']]) {
      const c = captureIo();
      const code = await main(args, c.io);
      expect(code, args.join(' ')).toBe(2);
      expect(c.err(), args.join(' ')).toMatch(new RegExp(`^coapfw ${args[0]}: .*\\(see 'coapfw ${args[0]} --help'\\)\\n$`));
    }
    for (const args of [['frobnicate'], ['constructor']]) {
      const c = captureIo();
      expect(await main(args, c.io), args[0]).toBe(2);
      expect(c.err()).toMatch(/unknown command/);
    }
  });

  it('names the output after the last path segment, in the current directory', async () => {
    const c = captureIo();
    const cwd = process.cwd();
    const here = await mkdtemp(join(tmpdir(), 'coapfw-cwd-'));
    process.chdir(here);
    try {
      expect(await main(['get', `coap://127.0.0.1:${server.address().port}/files/fw.bin`], c.io)).toBe(0);
      expect(new Uint8Array(await readFile(join(here, 'fw.bin')))).toEqual(data);
    } finally {
      process.chdir(cwd);
      await rm(here, { recursive: true, force: true });
    }
  });

  it('prints --help and exits 0', async () => {
    for (const cmd of ['serve', 'get']) {
      const c = captureIo();
      expect(await main([cmd, '--help'], c.io)).toBe(0);
      expect(c.out()).toMatch(new RegExp(`usage: coapfw ${cmd}`));
    }
  });

  it('serve refuses a directory that does not exist', async () => {
    const c = captureIo();
    expect(await main(['serve', join(dir, 'missing'), '--port', '0'], c.io)).toBe(1);
    // Named once, with what to do (the README's step creates it first).
    expect(c.err()).toMatch(/^coapfw serve: \S+missing: no such directory \(create it first: mkdir -p \S+missing\) \[IO_ERROR\]\n$/);
  });
});
