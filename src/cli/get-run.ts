/**
 * `coapfw get` on its own, for the start-up of the command people run most
 * often in scripts: bin.cts runs this, bundled with everything it imports
 * into one CommonJS file (dist/src/cli/get.cjs, scripts/bundle-get.mjs),
 * instead of main.js and ~50 ES modules. Errors are reported as main.ts
 * reports them.
 */
import { reportError, type CliIo } from './common.js';
import { getCommand } from './get.js';

/** Run `coapfw get ARGS`; resolves to the exit code. */
export async function runGet(args: string[], io: CliIo = process): Promise<number> {
  try {
    return await getCommand(args, io);
  } catch (e) {
    return reportError(e, 'get', io);
  }
}
