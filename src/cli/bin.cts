#!/usr/bin/env node
/**
 * The `coapfw` command. CommonJS on purpose, as is the bundle of `coapfw get`
 * it runs (dist/src/cli/get.cjs, scripts/bundle-get.mjs): on Node 20 an
 * ES-module entry and the ~50 ES modules of a get cost it about 45 ms before
 * it sends anything. Every other command, and a get where there is no bundle
 * (a tree never built), goes through main.js.
 *
 * The bundle is compiled with V8's code cache (vm.Script cachedData), kept
 * beside it in get.cjs.cache once a get has run: it holds the functions that
 * run compiled, so the next get neither parses the bundle nor compiles them
 * again. The cache is keyed by the bundle's content hash (its first line,
 * written by the build) and by Node's version and architecture; V8 itself
 * checks only the source's length, so a cache is never used for another
 * bundle; and by a SHA-256 of its own, since V8 does not check the cache's
 * checksum in release builds (a damaged cache is a fatal error there, not a
 * rejection). A cache that does not match, or that V8 rejects, is made again;
 * where the directory cannot be written, gets run without one.
 * COAPFW_CODE_CACHE=0 turns it off. NODE_DEBUG=coapfw says what happened.
 */
import fs = require('node:fs');
import path = require('node:path');
import util = require('node:util');
import vm = require('node:vm');

const argv = process.argv.slice(2);
const debug = util.debuglog('coapfw');

const exit = (code: number): void => {
  process.exitCode = code;
};
const crash = (e: unknown): void => {
  process.stderr.write(`coapfw: ${String(e)}\n`);
  process.exitCode = 1;
};

type GetBundle = { runGet(args: string[]): Promise<number> };

const BUNDLE = path.join(__dirname, 'get.cjs');
const CACHE = `${BUNDLE}.cache`;
/** The first line of the bundle: `// coapfw get bundle <sha256 hex>`. */
const HASH_LINE = /^\/\/ coapfw get bundle ([0-9a-f]{64})\n/;

/** The get bundle, compiled with the code cache when there is a good one; undefined when it was never built. */
function loadGet(): { bundle: GetBundle; saveCache: () => void } | undefined {
  let source: string;
  try {
    source = fs.readFileSync(BUNDLE, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const hash = HASH_LINE.exec(source)?.[1];
  const useCache = hash !== undefined && process.env.COAPFW_CODE_CACHE !== '0';
  const key = `coapfw-get ${hash} ${process.version} ${process.arch}`;
  let cached: Buffer | undefined;
  let damaged = false;
  if (useCache) {
    try {
      // `<key> <sha256 of the data>\n<data>`: V8 does not check its own checksum (a damaged cache is a fatal error in V8, not a rejection), so we do.
      const file = fs.readFileSync(CACHE);
      const nl = file.indexOf(10);
      const [fileKey, sum] = splitLast(file.subarray(0, Math.max(0, nl)).toString('latin1'));
      if (fileKey === key) {
        const data = file.subarray(nl + 1);
        if (sha256(data) === sum) cached = data;
        else damaged = true;
      }
    } catch {
      // None yet, or unreadable: compiled without.
    }
  }
  // The wrapper of a CommonJS module, so that the bundle runs as require() would run it. The bundle has
  // no import() of its own (the build checks): a script compiled from a cache has no loader for one on Node 20.
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename: BUNDLE, cachedData: cached });
  const rejected = damaged || (cached !== undefined && script.cachedDataRejected === true);
  debug('code cache: %s', !useCache ? 'off' : rejected ? 'rejected' : cached === undefined ? 'none' : 'used');
  const module = { exports: {} as GetBundle };
  const wrapper = script.runInThisContext() as (e: object, r: NodeJS.Require, m: object, f: string, d: string) => void;
  wrapper(module.exports, require('node:module').createRequire(BUNDLE), module, BUNDLE, __dirname);
  const saveCache = (): void => {
    if (!useCache || (cached !== undefined && !rejected)) return;
    const tmp = `${CACHE}.${process.pid}`;
    try {
      const data = script.createCachedData();
      fs.writeFileSync(tmp, Buffer.concat([Buffer.from(`${key} ${sha256(data)}\n`, 'latin1'), data]));
      fs.renameSync(tmp, CACHE); // whole or not at all, whatever other gets do at the same time
      debug('code cache: made');
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      debug('code cache: not written (%s)', (e as Error).message);
    }
  };
  return { bundle: module.exports, saveCache };
}

function sha256(data: Uint8Array): string {
  return require('node:crypto').createHash('sha256').update(data).digest('hex') as string;
}

/** `a b c` -> [`a b`, `c`]. */
function splitLast(line: string): [string, string] {
  const i = line.lastIndexOf(' ');
  return [line.slice(0, Math.max(0, i)), line.slice(i + 1)];
}

const get = argv[0] === 'get' ? loadGet() : undefined;
if (get !== undefined) {
  get.bundle.runGet(argv.slice(1)).then((code) => {
    exit(code);
    get.saveCache();
  }, crash);
} else {
  import('./main.js').then(async (m) => exit(await m.main(argv)), crash);
}
