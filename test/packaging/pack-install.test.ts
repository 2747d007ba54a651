/**
 * The package as a user gets it: `npm pack`, install the tarball into an
 * empty project (from the registry, as a user's machine would), run the CLI
 * and import every subpath. Checks that the tarball ships what the bin and
 * the subpaths need and nothing else, and that the install pulls no native
 * code we do not use (cbor-x is bundled without its native extractor). The
 * install builds coapfw's own native UDP socket from its C source.
 * Needs the npm registry; one test, bounded by its timeout.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { startFileServer } from '../../src/server/serve.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; exports: Record<string, unknown> };
let work: string | undefined;

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await files(p)));
    else out.push(p);
  }
  return out;
}

describe('npm pack, then install into an empty project', () => {
  // The install compiles better-sqlite3 (about 2 minutes here, more while the rest of the suite runs) and our UDP socket.
  it('installs, runs `npx coapfw --version` and imports every subpath', { timeout: 420_000 }, async () => {
    expect(existsSync(join(ROOT, 'dist/src/cli/bin.js')), 'run `npm run build` first (npm test does)').toBe(true);
    work = await mkdtemp(join(tmpdir(), 'coapfw-pack-'));
    const npm = (args: string[], cwd: string) => run('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, timeout: 360_000, maxBuffer: 16 << 20 });

    // dist/ is fresh from `npm test`'s build (which cleans first): pack it as is.
    const packed = JSON.parse((await npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], ROOT)).stdout) as Array<{ filename: string; files: Array<{ path: string }>; bundled: string[] }>;
    const paths = packed[0]!.files.map((f) => f.path);
    expect([...packed[0]!.bundled].sort()).toEqual(['cbor-extract', 'cbor-x']);
    const own = paths.filter((p) => !p.startsWith('node_modules/'));
    expect(own.filter((p) => !p.startsWith('dist/src/')).sort()).toEqual(['LICENSE', 'README.md', 'binding.gyp', 'native/udp.c', 'package.json', 'scripts/build-native.mjs']);
    // No source maps into sources we do not ship; the fleet page's static files (src/http/public) are copied as they are.
    const PUBLIC = 'dist/src/http/public/';
    expect(own.filter((p) => !/\.(c?js|d\.c?ts)$/.test(p) && p.startsWith('dist/') && !p.startsWith(PUBLIC))).toEqual([]);
    // The command and the get bundle it runs (not its code cache, which is made on the user's machine).
    expect(own).toEqual(expect.arrayContaining(['dist/src/cli/bin.cjs', 'dist/src/cli/get.cjs', 'dist/src/client/load-secure.cjs']));
    expect(own.filter((p) => p.includes('.cache'))).toEqual([]);
    expect(own.filter((p) => p.startsWith(PUBLIC)).map((p) => p.slice(PUBLIC.length)).sort()).toEqual(readdirSync(join(ROOT, 'src/http/public')).sort());
    const source = (p: string): string => join(ROOT, p === 'dist/src/cli/get.cjs' ? 'src/cli/get-run.ts' : p.replace(/^dist\//, '').replace(/\.js$/, '.ts').replace(/\.cjs$/, '.cts'));
    const stale = own.filter((p) => /\.c?js$/.test(p) && !p.startsWith(PUBLIC) && !existsSync(source(p)));
    expect(stale, 'built files without a source: run `npm run build`').toEqual([]);
    expect(paths.filter((p) => p.startsWith('node_modules/') && !/^node_modules\/(cbor-x|cbor-extract)\//.test(p))).toEqual([]);
    // The bundled cbor-extract is our JavaScript stand-in, not the native package.
    expect(paths.filter((p) => p.startsWith('node_modules/cbor-extract/')).sort()).toEqual(['node_modules/cbor-extract/index.js', 'node_modules/cbor-extract/package.json']);
    expect(paths.some((p) => p.endsWith('.node'))).toBe(false);

    const app = join(work, 'app');
    await mkdir(app);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    await npm(['install', join(work, packed[0]!.filename)], app);

    const version = await run('npx', ['--no-install', 'coapfw', '--version'], { cwd: app, timeout: 30_000 });
    expect(version.stdout.trim()).toBe(`coapfw ${pkg.version}`);

    // A get as a user runs it: the installed command, its bundle, the UDP addon found from the bundle, and the
    // code cache made beside the bundle by the first get and used by the next.
    const fw = Uint8Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff);
    await writeFile(join(work, 'fw.bin'), fw);
    const server = await startFileServer({ dir: work, host: '127.0.0.1', port: 0, refreshMs: 0 });
    try {
      const uri = `coap://127.0.0.1:${server.address().port}/files/fw.bin`;
      const said: string[] = [];
      for (const out of ['a.bin', 'b.bin']) {
        const got = await run('npx', ['--no-install', 'coapfw', 'get', uri, '-o', out], { cwd: app, timeout: 30_000, env: { ...process.env, NODE_DEBUG: 'coapfw' } });
        expect(new Uint8Array(readFileSync(join(app, out)))).toEqual(fw);
        said.push(...[...got.stderr.matchAll(/code cache: (\S+)/g)].map((m) => m[1]!));
      }
      expect(said).toEqual(['none', 'made', 'used']);
    } finally {
      await server.close();
    }

    const subpaths = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => (k === '.' ? 'coapfw' : `coapfw/${k.slice(2)}`));
    await writeFile(
      join(app, 'check.mjs'),
      `const out = {};
for (const s of ${JSON.stringify(subpaths)}) out[s] = Object.keys(await import(s)).length;
const { VERSION, isCoapfwError } = await import('coapfw');
const { createEnvelope, privateKeyFromSecret, verifyEnvelope } = await import('coapfw/suit');
const { decodeMessage } = await import('coapfw/codec');
const key = privateKeyFromSecret('ed25519', new Uint8Array(32).fill(7));
const env = createEnvelope({ sequence: 3, vendorId: new Uint8Array(16), classId: new Uint8Array(16), uri: '/fw/x', digest: new Uint8Array(32), size: 1 }, [key]);
out.verified = String(verifyEnvelope(env, { trust: { anchors: [{ name: 'k', publicKey: key.publicKey }] } }).sequenceNumber);
try { decodeMessage(new Uint8Array([0x49, 1, 0, 1])); } catch (e) { out.malformed = isCoapfwError(e, 'MALFORMED_MESSAGE'); }
out.version = VERSION;
// The update service's default database: better-sqlite3, an optional dependency npm installs with coapfw.
const { openStore } = await import('coapfw/service');
const store = await openStore(':memory:');
out.sqlite = (await store.listDevices()).length;
await store.close();
// The native UDP socket, built by the install from native/udp.c.
const { UdpTransport } = await import('coapfw/transport');
const udp = await UdpTransport.bind();
out.udp = udp.backend;
await udp.close();
console.log(JSON.stringify(out));`,
    );
    const checked = JSON.parse((await run(process.execPath, ['check.mjs'], { cwd: app, timeout: 30_000 })).stdout) as Record<string, unknown>;
    for (const s of subpaths) expect(checked[s], s).toBeGreaterThan(0);
    expect(checked).toMatchObject({ verified: '3', malformed: true, version: pkg.version, sqlite: 0, udp: 'native' });

    // Nothing native from cbor-x's side, and only the stand-in for its optional extractor; the native
    // addons are the SQLite driver and our UDP socket (the stand-in for node-aead-crypto aside).
    const installed = (await files(join(app, 'node_modules'))).map((p) => relative(app, p));
    expect(installed.filter((p) => p.includes('cbor-extract')).sort()).toEqual(['node_modules/coapfw/node_modules/cbor-extract/index.js', 'node_modules/coapfw/node_modules/cbor-extract/package.json']);
    expect(installed.filter((p) => p.endsWith('.node') && !p.includes('node-aead-crypto') && !p.startsWith('node_modules/better-sqlite3/'))).toEqual(['node_modules/coapfw/build/Release/coapfw_udp.node', 'node_modules/coapfw/build/Release/obj.target/coapfw_udp.node']);
  });
});
