/**
 * Signals for long-running commands. SIGINT (Ctrl-C), SIGTERM and SIGHUP
 * abort an AbortSignal the command passes to the library, so the command
 * stops cleanly (files closed, a partial download kept, a message printed);
 * a second signal exits at once, for when the clean stop hangs.
 *
 * Under `npx`/`npm exec` our node process sits below `sh -c` below npm: a
 * SIGKILL of npm reaches neither, and the node process would keep running
 * on its own. {@link watchParent} notices that npm went away.
 */
import { readFileSync } from 'node:fs';
import { Interrupted } from './common.js';

/** The signals a command stops on. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** An AbortSignal tied to the stop signals. */
export interface StopSignal {
  readonly signal: AbortSignal;
  /** The signal that arrived, if any. */
  caught(): NodeJS.Signals | undefined;
  /** Throw {@link Interrupted} if a signal arrived (after the command's clean stop). */
  throwIfCaught(): void;
  /** Remove the handlers (the default actions apply again). */
  dispose(): void;
}

/** `onFirst` runs when the first signal arrives (e.g. to end the progress line and say what happens). */
export function stopOnSignals(onFirst?: (sig: NodeJS.Signals) => void): StopSignal {
  const controller = new AbortController();
  let caught: NodeJS.Signals | undefined;
  const handler = (sig: NodeJS.Signals): void => {
    if (caught !== undefined) process.exit(new Interrupted(sig).exitCode); // a second one: do not wait any more
    caught = sig;
    onFirst?.(sig);
    controller.abort(new Interrupted(sig));
  };
  for (const s of STOP_SIGNALS) process.on(s, handler);
  return {
    signal: controller.signal,
    caught: () => caught,
    throwIfCaught() {
      if (caught !== undefined) throw new Interrupted(caught);
    },
    dispose() {
      for (const s of STOP_SIGNALS) process.off(s, handler);
    },
  };
}

/** The parent pid of `pid` from /proc (Linux), or undefined. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state, ppid, ...
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

const SHELLS = new Set(['sh', 'dash', 'bash', 'zsh', 'ash', 'ksh']);

function isShell(pid: number): boolean {
  try {
    return SHELLS.has(readFileSync(`/proc/${pid}/comm`, 'utf8').trim());
  } catch {
    return false;
  }
}

/**
 * When started by `npm exec`/`npx` (`npm_command=exec`), call `onGone` once
 * when npm goes away: our parent changes (we were re-parented), or, with
 * npm's `sh -c` between us, the shell's parent does. Polls every `intervalMs`
 * without keeping the process alive. Returns a function that stops watching;
 * does nothing outside npm exec.
 */
export function watchParent(onGone: () => void, intervalMs = 250, env: NodeJS.ProcessEnv = process.env): () => void {
  if (env.npm_command !== 'exec') return () => {};
  const parent = process.ppid;
  const grandparent = isShell(parent) ? parentOf(parent) : undefined;
  const timer = setInterval(() => {
    const gone = process.ppid !== parent || (grandparent !== undefined && parentOf(parent) !== grandparent);
    if (!gone) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Resolves at the first SIGINT or SIGTERM: how a server command (`serve`, `gateway`) waits to shut down cleanly. */
export function untilInterrupted(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
