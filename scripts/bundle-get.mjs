/**
 * Build step after tsc: `coapfw get` as one module. A get needs ~50 of our
 * modules (codec, messaging, the Q-Block2 client, the file sink); on Node 20,
 * resolving, reading and linking each costs more than compiling them all
 * (measured: 110 ms to import get.js as 50 files, 32 ms as one). So
 * dist/src/cli/get.js is replaced by a bundle of itself and what it imports,
 * except what main.js has already loaded (the CLI's shared module and the
 * error classes, which must stay one instance for `instanceof`), the
 * packages, and secure.js (DTLS, imported only for coaps://).
 */
import { renameSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist/src');
const entry = join(dist, 'cli/get.js');
/** Our modules that stay separate files (relative to dist/src, without .js). */
const SHARED = new Set(['cli/common', 'cli/main', 'errors', 'suggest', 'bounded-read', 'client/secure']);

const bundle = await rolldown({
  input: entry,
  platform: 'node',
  external: (id, importer, resolved) => {
    if (id.startsWith('node:') || (!id.startsWith('.') && !id.startsWith('/'))) return true; // builtins and packages
    if (!resolved && importer !== undefined) id = join(dirname(importer), id);
    const rel = relative(dist, id).split(sep).join('/').replace(/\.js$/, '');
    return SHARED.has(rel);
  },
});
const tmp = join(dist, 'cli/get.bundle.tmp.js');
await bundle.write({ file: tmp, format: 'esm', sourcemap: true, codeSplitting: false });
await bundle.close();
renameSync(tmp, entry);
renameSync(`${tmp}.map`, `${entry}.map`);
