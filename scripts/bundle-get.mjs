/**
 * Build step after tsc: `coapfw get` as one CommonJS file,
 * dist/src/cli/get.cjs, which bin.cjs loads for a get. A get needs ~50 of
 * our modules (codec, messaging, the Q-Block2 client, the file sink) and two
 * small pieces of @noble; on Node 20 resolving, reading and linking each ES
 * module costs more than compiling them all, and the ES-module loader
 * itself costs more than CommonJS (measured, one-block get on loopback: 137
 * ms through main.js and the modules, 116 ms as one ES module, 91-100 ms as
 * this bundle from a CommonJS entry; `node -e 0` 42 ms).
 *
 * Bundled: our modules and the pure-JavaScript packages they use. Not
 * bundled: Node's built-ins, and client/load-secure.cjs, which imports
 * client/secure.js (DTLS, with node-dtls-client) only for coaps://, so that
 * is loaded only then (and by an ordinary import(): the bundle is compiled
 * from a code cache, where an import() of its own would have no loader).
 * Errors from it are still CoapfwErrors to the bundle's copy: that class
 * checks a brand shared by every copy (src/errors.ts), not its prototype.
 * dist/src/cli/get.js stays the module main.js loads (a get run through
 * main(), as tests and programs do). The bundle's first line is
 * `// coapfw get bundle <sha256 of the rest>`, the key of its code cache.
 */
import { createHash } from 'node:crypto';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist/src');
const entry = join(dist, 'cli/get-run.js');
/** Our modules that stay separate files (relative to dist/src, without .js). */
const SEPARATE = new Set(['client/load-secure']);

const bundle = await rolldown({
  input: entry,
  platform: 'node',
  external: (id, importer, resolved) => {
    if (id.startsWith('node:')) return true;
    if (!id.startsWith('.') && !id.startsWith('/')) return false; // packages: bundled (checked below)
    if (!resolved && importer !== undefined) id = join(dirname(importer), id);
    const rel = relative(dist, id).split(sep).join('/').replace(/\.c?js$/, '');
    return SEPARATE.has(rel);
  },
});
const options = { file: join(dist, 'cli/get.cjs'), format: 'cjs', sourcemap: true, codeSplitting: false };
// The first line names the bundle by its content: bin.cjs keys V8's code cache by it.
const hash = createHash('sha256').update((await bundle.generate(options)).output[0].code).digest('hex');
const { output } = await bundle.write({ ...options, banner: `// coapfw get bundle ${hash}` });
await bundle.close();
// Only the pure-JavaScript @noble pieces may be inside; a package with native code or state must not be.
const packages = new Set(output.flatMap((o) => Object.keys(o.modules ?? {})).filter((m) => m.includes(`${sep}node_modules${sep}`)).map((m) => m.split(`${sep}node_modules${sep}`).pop().split(sep).slice(0, 2).join('/')));
const unexpected = [...packages].filter((p) => !p.startsWith('@noble/'));
if (unexpected.length > 0) throw new Error(`bundle-get: unexpected packages in get.cjs: ${unexpected.join(', ')}`);
// bin.cjs compiles the bundle from V8's code cache, where an import() has no loader on Node 20: there must be none.
const dynamic = output.flatMap((o) => o.dynamicImports ?? []);
if (dynamic.length > 0 || /\bimport\(/.test(output[0].code)) throw new Error(`bundle-get: get.cjs must not import() (${dynamic.join(', ') || 'import( in the code'}): load such a module through a CommonJS file of its own, as client/load-secure.cts does`);
