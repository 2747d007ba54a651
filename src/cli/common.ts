/**
 * Small shared pieces of the `coapfw` command: argument parsing on
 * `node:util.parseArgs`, output streams, and the one-line error convention.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CoapfwError } from '../errors.js';

/** Streams a command writes to; tests pass their own. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** A sub-command: parses its own arguments, returns the process exit code. */
export type CliCommand = (args: string[], io: CliIo) => Promise<number>;

/** An error in how the command was called: printed with a hint to use --help. Exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `parseArgs` in strict mode, turning its errors into UsageError. */
export function parse<T extends NonNullable<ParseArgsConfig['options']>>(
  args: string[],
  options: T,
  allowPositionals = true,
): { values: Record<string, string | boolean | string[] | boolean[] | undefined>; positionals: string[] } {
  try {
    const r = parseArgs({ args, options, allowPositionals, strict: true });
    return { values: r.values as Record<string, string | boolean | string[] | boolean[] | undefined>, positionals: r.positionals };
  } catch (e) {
    throw new UsageError((e as Error).message.split('\n')[0] ?? String(e));
  }
}

/** Parse a decimal integer option with bounds, labelled for the error message. */
export function intOption(name: string, raw: unknown, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const s = String(raw);
  if (!/^-?\d+$/.test(s)) throw new UsageError(`--${name}: expected an integer, got '${s}'`);
  const n = Number(s);
  if (n < min || n > max) throw new UsageError(`--${name}: expected ${min}..${max}, got ${n}`);
  return n;
}

/** Map any thrown value to a one-line message and an exit code. */
export function reportError(e: unknown, command: string, io: CliIo): number {
  if (e instanceof UsageError) {
    io.stderr.write(`coapfw ${command}: ${e.message} (see 'coapfw ${command} --help')\n`);
    return 2;
  }
  if (e instanceof CoapfwError) {
    io.stderr.write(`coapfw ${command}: ${e.message} [${e.code}]\n`);
    return 1;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && typeof err.message === 'string') {
    io.stderr.write(`coapfw ${command}: ${err.message}\n`);
    return 1;
  }
  io.stderr.write(`coapfw ${command}: unexpected error: ${err?.stack ?? String(e)}\n`);
  return 1;
}
