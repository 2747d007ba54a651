/**
 * `coapfw get` on its own, for the start-up of the command people run most
 * often in scripts: bin.cts runs this, bundled with everything it imports
 * into one CommonJS file (dist/src/cli/get.cjs, scripts/bundle-get.mjs),
 * instead of main.js and ~50 ES modules. Errors are reported as for every
 * command (common.ts runCommand).
 */
import { runCommand, type CliIo } from './common.js';
import { getCommand } from './get.js';

/** Run `coapfw get ARGS`; resolves to the exit code. */
export function runGet(args: string[], io: CliIo = process): Promise<number> {
  return runCommand('get', () => getCommand, args, io);
}
