/**
 * `coapfw get` starts fast (issue #9): the real process, as a user runs it
 * (`coapfw` is dist/src/cli/bin.cjs), loads only what a plain coap:// get
 * needs. Two hooks record every file the process loads: an ES-module loader
 * hook (module.register) and a CommonJS one (Module._load). A get runs the
 * CommonJS bundle (scripts/bundle-get.mjs) and must load no ES module at
 * all, nothing of DTLS, SUIT, the device, the server or the update service;
 * a coaps:// get does load DTLS, so the hooks see what they should.
 *
 * The bundle's V8 code cache (bin.cts) is checked on a copy of bin.cjs and
 * get.cjs in a directory of the test's own, so that the gets of other tests
 * running beside it do not touch the cache it looks at.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFileServer, type FileServer } from '../../src/server/serve.js';
import { BIN_CJS } from './spawn-cli.js';

let dir: string;
let server: FileServer;
const data = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
const DIST_CLI = join(import.meta.dirname, '../../dist/src/cli');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'coapfw-startup-'));
  await writeFile(join(dir, 'fw.bin'), data);
  // The ES-module hook runs on the loader thread: it appends each file URL to LOG.
  await writeFile(
    join(dir, 'hook.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function load(url, context, next) {
  if (url.startsWith('file:')) appendFileSync(process.env.COAPFW_LOAD_LOG, 'esm ' + url + '\\n');
  return next(url, context);
}`,
  );
  await writeFile(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hook.mjs')).href)});\n`);
  // The CommonJS hook: every file require() resolves (the entry and the addon among them).
  await writeFile(
    join(dir, 'cjs-hook.cjs'),
    `const Module = require('node:module'); const { appendFileSync } = require('node:fs'); const { pathToFileURL } = require('node:url');
const load = Module._load;
Module._load = function (request, parent, isMain) {
  const file = Module._resolveFilename(request, parent, isMain);
  if (file.startsWith('/')) appendFileSync(process.env.COAPFW_LOAD_LOG, 'cjs ' + pathToFileURL(file).href + '\\n');
  return load.apply(this, arguments);
};`,
  );
  server = await startFileServer({ dir, host: '127.0.0.1', port: 0, refreshMs: 0 });
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Run `node BIN ...args` asynchronously (a blocking spawnSync would stall the in-process server too). */
async function run(bin: string, args: string[], env: NodeJS.ProcessEnv = {}, node: string[] = []): Promise<{ status: number | null; stderr: string }> {
  const child = spawn(process.execPath, [...node, bin, ...args], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { status, stderr };
}

/** Run `coapfw ...args` with both hooks; the files it loaded, as `esm|cjs path` relative to the package. */
async function loaded(args: string[], log: string): Promise<{ status: number | null; stderr: string; modules: string[] }> {
  const r = await run(BIN_CJS, args, { COAPFW_LOAD_LOG: log }, ['--import', join(dir, 'register.mjs'), '--require', join(dir, 'cjs-hook.cjs')]);
  const root = pathToFileURL(join(import.meta.dirname, '../..')).href;
  const modules = (await readFile(log, 'utf8').catch(() => ''))
    .split('\n')
    .filter((line) => line.includes(root))
    .map((line) => line.replace(`${root}/`, ''));
  return { ...r, modules };
}

const HEAVY = /(^|\/)(transport\/dtls|suit|device|server|service|gateway|http|delta|flash|trust)\//;

describe('coapfw get start-up', () => {
  it('a coap:// get runs the CommonJS bundle: no ES module, no DTLS, SUIT, device, server or service module', { timeout: 30_000 }, async () => {
    const port = server.address().port;
    const r = await loaded(['get', `coap://127.0.0.1:${port}/files/fw.bin`, '-o', join(dir, 'out.bin')], join(dir, 'get.log'));
    expect(r.status, r.stderr).toBe(0);
    expect(new Uint8Array(await readFile(join(dir, 'out.bin')))).toEqual(data);
    // (With --import, Node hands even a CommonJS entry to the ES-module loader: bin.cjs is seen there.)
    expect(r.modules.filter((m) => m.startsWith('esm ') && m !== 'esm dist/src/cli/bin.cjs')).toEqual([]);
    expect(r.modules.filter((m) => HEAVY.test(m))).toEqual([]);
    expect(r.modules.filter((m) => m.includes('node-dtls-client') || m.includes('cbor-x') || m.includes('@noble'))).toEqual([]);
    // The DTLS loader (a few lines, which import nothing until coaps://) and on Linux the UDP addon; the
    // bundle itself is read and compiled by bin.cjs, not required.
    expect(r.modules.filter((m) => m.startsWith('cjs ') && !m.endsWith('.node') && m !== 'cjs dist/src/cli/bin.cjs')).toEqual(['cjs dist/src/client/load-secure.cjs']);
  });

  it('the hooks do see DTLS when a coaps:// get needs it (the check above can fail)', { timeout: 30_000 }, async () => {
    // Nothing listens there: the handshake fails, but only after secure.js and the DTLS client were loaded.
    const r = await loaded(['get', 'coaps://127.0.0.1:1/x', '--psk-identity', 'id', '--psk-key', 'secret', '--dtls-retries', '0', '--timeout', '3', '-o', join(dir, 'never.bin')], join(dir, 'coaps.log'));
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^coapfw get: .*\[[A-Z_]+\]\n$/); // a CoapfwError from secure.js's copy of the class, reported as one
    expect(r.modules.some((m) => m.startsWith('esm dist/src/transport/dtls/'))).toBe(true);
    expect(r.modules).toContain('esm dist/src/client/secure.js');
  });

  it('other commands, and get --help, still work from the same entry', { timeout: 30_000 }, async () => {
    const version = await run(BIN_CJS, ['--version']);
    expect(version.status).toBe(0);
    const help = await run(BIN_CJS, ['get', '--bogus']);
    expect(help.status).toBe(2);
    expect(help.stderr).toContain("see 'coapfw get --help'");
  });
});

describe('the get bundle\'s code cache', () => {
  /** bin.cjs, get.cjs and what it requires copied to a directory of their own; its get.cjs.cache is this test's alone. */
  async function copyOfBin(name: string): Promise<{ bin: string; cache: string; hash: string }> {
    const d = join(dir, name, 'cli');
    await mkdir(d, { recursive: true });
    await mkdir(join(dir, name, 'client'));
    await copyFile(join(DIST_CLI, 'bin.cjs'), join(d, 'bin.cjs'));
    await copyFile(join(DIST_CLI, 'get.cjs'), join(d, 'get.cjs'));
    await copyFile(join(DIST_CLI, '../client/load-secure.cjs'), join(dir, name, 'client/load-secure.cjs'));
    const hash = /^\/\/ coapfw get bundle ([0-9a-f]{64})\n/.exec(await readFile(join(d, 'get.cjs'), 'utf8'))?.[1];
    expect(hash, 'the build writes the bundle hash on its first line').toBeDefined();
    return { bin: join(d, 'bin.cjs'), cache: join(d, 'get.cjs.cache'), hash: hash! };
  }

  /** One get through `bin` with NODE_DEBUG=coapfw: what it said about the cache; fails unless the bytes are right. */
  async function get(bin: string, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
    const out = join(dir, `cached-${Math.random().toString(36).slice(2)}.bin`);
    const r = await run(bin, ['get', `coap://127.0.0.1:${server.address().port}/files/fw.bin`, '-o', out], { NODE_DEBUG: 'coapfw', ...env });
    expect(r.status, r.stderr).toBe(0);
    expect(new Uint8Array(await readFile(out))).toEqual(data);
    return [...r.stderr.matchAll(/code cache: (.*)/g)].map((m) => m[1]!);
  }

  it('is made by the first get, used by the next, and keyed by the bundle and the Node that made it', { timeout: 30_000 }, async () => {
    const { bin, cache, hash } = await copyOfBin('cache-basic');
    expect(await get(bin)).toEqual(['none', 'made']);
    const header = (await readFile(cache)).subarray(0, 200).toString('latin1').split('\n')[0]!;
    expect(header).toMatch(new RegExp(`^coapfw-get ${hash} ${process.version} ${process.arch} [0-9a-f]{64}$`));
    expect(await get(bin)).toEqual(['used']);
    // A cache another Node (or another bundle) made is not given to V8: made again.
    const file = await readFile(cache);
    await writeFile(cache, Buffer.from(file.toString('latin1').replace(process.version, 'v0.0.0'), 'latin1'));
    expect(await get(bin)).toEqual(['none', 'made']);
    expect(await get(bin)).toEqual(['used']);
  });

  it('a damaged cache is rejected and made again, never handed to V8 (which would abort the process)', { timeout: 30_000 }, async () => {
    const { bin, cache } = await copyOfBin('cache-damaged');
    await get(bin);
    const file = await readFile(cache);
    file.write('garbage!', file.length - 5000, 'latin1');
    await writeFile(cache, file);
    expect(await get(bin)).toEqual(['rejected', 'made']);
    expect(await get(bin)).toEqual(['used']);
    // Cut short (a full disk): also rejected.
    await writeFile(cache, (await readFile(cache)).subarray(0, 4000));
    expect(await get(bin)).toEqual(['rejected', 'made']);
  });

  it('where it cannot be written the get runs without it; COAPFW_CODE_CACHE=0 turns it off', { timeout: 30_000 }, async () => {
    const { bin, cache } = await copyOfBin('cache-unwritable');
    await mkdir(cache); // a directory where the file would go: unreadable and not replaceable
    const said = await get(bin);
    expect(said[0]).toBe('none');
    expect(said[1]).toMatch(/^not written/);
    expect((await stat(cache)).isDirectory()).toBe(true);
    const off = await copyOfBin('cache-off');
    expect(await get(off.bin, { COAPFW_CODE_CACHE: '0' })).toEqual(['off']);
    await expect(stat(off.cache)).rejects.toThrow();
  });
});
