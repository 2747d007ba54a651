/**
 * The real `coapfw` process (dist/, built by `npm test`), for what only a
 * process shows: signals, exit codes, a terminal. `inTerminal` runs it under
 * util-linux `script`, so stderr is a TTY and a '\x03' written to its input
 * is a real Ctrl-C (the terminal's line discipline sends SIGINT).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export const BIN = join(import.meta.dirname, '../../dist/src/cli/bin.js');
/** The package's `coapfw` command itself (bin.js runs it too, through one more module). */
export const BIN_CJS = join(import.meta.dirname, '../../dist/src/cli/bin.cjs');

/** A running CLI process and what it printed so far. */
export interface CliProcess {
  readonly child: ChildProcess;
  out(): string;
  err(): string;
  /** Resolves when the process has exited. */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
  /** Resolves once `test(stdout, stderr)` is true, polling every 20 ms; rejects after `ms`. */
  waitFor(test: (out: string, err: string) => boolean, ms?: number): Promise<void>;
}

function wrap(child: ChildProcess): CliProcess {
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
  return {
    child,
    out: () => out,
    err: () => err,
    done,
    waitFor(test, ms = 20_000) {
      return new Promise((resolve, reject) => {
        const started = Date.now();
        const poll = (): void => {
          if (test(out, err)) return resolve();
          if (Date.now() - started > ms || child.exitCode !== null) return reject(new Error(`timed out waiting; stdout=${out.slice(-400)} stderr=${err.slice(-400)}`));
          setTimeout(poll, 20);
        };
        poll();
      });
    },
  };
}

/** `node bin.js ...args` with pipes for stdout and stderr. */
export function runCli(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  return wrap(spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd, env: options.env ?? process.env }));
}

const quote = (s: string): string => `'${s.replaceAll("'", `'\\''`)}'`;

/** The CLI on a pseudo-terminal (script -qfec): its stdout carries both streams as a terminal shows them. */
export function inTerminal(args: readonly string[], options: { cwd?: string } = {}): CliProcess {
  const cmd = [process.execPath, BIN, ...args].map(quote).join(' ');
  return wrap(spawn('script', ['-qfec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], cwd: options.cwd, env: { ...process.env, COLUMNS: '100' } }));
}
