/**
 * Shared pieces of the `coapfw` command: output streams, exit codes, and the
 * one-line error convention (`coapfw get: <what, naming the file or URI> [CODE]`,
 * never a stack trace unless NODE_DEBUG=coapfw asks for it).
 */
import { debuglog } from 'node:util';
import { fileError } from '../bounded-read.js';
import { CoapfwError } from '../errors.js';

/** Streams a command writes to; tests pass their own. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream & { isTTY?: boolean };
  readonly stderr: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
}

/** A sub-command: parses its own arguments, returns the process exit code. */
export type CliCommand = (args: string[], io: CliIo) => Promise<number>;

/** Exit codes, the same for every command. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2, interrupted: 130 });

/** An error in how the command was called: printed with a hint to use --help. Exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command was stopped by a signal; it has said so itself. Exit code 128 + the signal number. */
export class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
  }

  /** 130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP (the shell's 128 + N). */
  get exitCode(): number {
    return this.signal === 'SIGTERM' ? 143 : this.signal === 'SIGHUP' ? 129 : EXIT.interrupted;
  }
}

const debug = debuglog('coapfw');

/** Write one JSON value as a line (the `--json` output); a bigint is a number when exact, else a decimal string. */
export function jsonLine(io: CliIo, obj: unknown): void {
  const big = (_k: string, v: unknown): unknown => (typeof v === 'bigint' ? (v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString()) : v);
  io.stdout.write(`${JSON.stringify(obj, big)}\n`);
}

/** An error as the `error` member of a `--json` line. */
export function errorJson(e: unknown): { code: string; message: string } {
  if (e instanceof CoapfwError) return { code: e.code, message: e.message };
  if (e instanceof UsageError) return { code: 'USAGE', message: e.message };
  return { code: 'INTERNAL', message: e instanceof Error ? e.message : String(e) };
}

/** Run command `name` (loaded by `load`) on `args`: its exit code, or what {@link reportError} makes of what it threw. */
export async function runCommand(name: string, load: () => CliCommand | Promise<CliCommand>, args: string[], io: CliIo): Promise<number> {
  try {
    return await (await load())(args, io);
  } catch (e) {
    return reportError(e, name, io);
  }
}

/** Map any thrown value to a one-line message on stderr and an exit code. */
export function reportError(e: unknown, command: string, io: CliIo): number {
  if (e instanceof Interrupted) return e.exitCode;
  if (e instanceof UsageError) {
    io.stderr.write(`coapfw ${command}: ${e.message} (see 'coapfw ${command} --help')\n`);
    return EXIT.usage;
  }
  const path = (e as NodeJS.ErrnoException | undefined)?.path;
  const err = typeof path === 'string' ? fileError(e, path) : e;
  if (err instanceof CoapfwError) {
    // A library message may start with the same word ("serve: ..."): say it once.
    const message = oneLine(err.message).replace(new RegExp(`^${command}: `), '');
    io.stderr.write(`coapfw ${command}: ${message} [${err.code}]\n`);
    debug('%s', err.stack);
    return EXIT.failure;
  }
  const message = err instanceof Error ? err.message : String(err);
  io.stderr.write(`coapfw ${command}: internal error: ${oneLine(message)} (NODE_DEBUG=coapfw shows the stack)\n`);
  debug('%s', err instanceof Error ? err.stack : String(err));
  return EXIT.failure;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}
