/**
 * `coapfw get` starts fast (issue #9): the real process, as a user runs it,
 * loads only what a plain coap:// get needs. A loader hook (module.register)
 * records every file module the process loads; a get must not load the DTLS
 * stack, SUIT, the device, the server or the update service, and (the build
 * bundles the get command, scripts/bundle-get.mjs) only a handful of files.
 * A coaps:// get does load DTLS: the hook sees what it should.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { BIN } from './spawn-cli.js';

let dir: string;
let server: FileServer;
const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-startup-'));
  await writeFile(join(dir, 'fw.bin'), data);
  // The hook runs on the loader thread: it appends each file URL to LOG.
  await writeFile(
    join(dir, 'hook.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(process.env.COAPFW_LOAD_LOG, url + '\\n');
  return next(url, context);
}`,
  );
  await writeFile(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hook.mjs')).href)});\n`);
  server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Run `coapfw ...args` with the hook; the file modules it loaded, as paths relative to the package. */
async function loaded(args: string[], log: string): Promise<{ status: number | null; stderr: string; modules: string[] }> {
  // Asynchronously: a blocking spawnSync would stall the in-process server too.
  const child = spawn(process.execPath, ['--import', join(dir, 'register.mjs'), BIN, ...args], { cwd: dir, env: { ...process.env, COAPFW_LOAD_LOG: log }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const root = pathToFileURL(join(import.meta.dirname, '../..')).href;
  const modules = (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((u) => u.startsWith(root)).map((u) => u.slice(root.length + 1));
  return { status, stderr, modules };
}

const HEAVY = /(^|\/)(transport\/dtls|suit|device|server|service|gateway|http|delta|flash|trust)\//;

describe('coapfw get start-up', () => {
  it('a coap:// get loads no DTLS, SUIT, device, server or service module, and few files', { timeout: 30_000 }, async () => {
    const port = server.address().port;
    const r = await loaded(['get', `coap://127.0.0.1:${port}/files/fw.bin`, '-o', join(dir, 'out.bin')], join(dir, 'get.log'));
    expect(r.status, r.stderr).toBe(0);
    expect(new Uint8Array(await readFile(join(dir, 'out.bin')))).toEqual(data);
    expect(r.modules).toContain('dist/src/cli/get.js');
    expect(r.modules.filter((m) => HEAVY.test(m))).toEqual([]);
    expect(r.modules.filter((m) => m.includes('node-dtls-client') || m.includes('cbor-x'))).toEqual([]);
    // The bundle: the CLI's shared modules, get.js and two small package files (59 before the bundle).
    expect(r.modules.length, r.modules.join('\n')).toBeLessThanOrEqual(12);
  });

  it('the hook does see DTLS when a coaps:// get needs it (the check above can fail)', { timeout: 30_000 }, async () => {
    // Nothing listens there: the handshake fails, but only after secure.js and the DTLS client were loaded.
    const r = await loaded(['get', 'coaps://127.0.0.1:1/x', '--psk-identity', 'id', '--psk-key', 'secret', '--dtls-retries', '0', '--timeout', '3', '-o', join(dir, 'never.bin')], join(dir, 'coaps.log'));
    expect(r.status).toBe(1);
    expect(r.modules.some((m) => m.startsWith('dist/src/transport/dtls/'))).toBe(true);
    expect(r.modules).toContain('dist/src/client/secure.js');
  });
});

