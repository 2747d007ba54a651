/**
 * A one-line progress bar for long transfers, drawn only on a terminal
 * (quiet when stderr is a pipe or file, so logs stay clean). The same line
 * shows what the transfer is waiting for ("waiting for 127.0.0.1:5999 ...")
 * until data flows, and is always ended with a newline, also on Ctrl-C.
 */
import type { CliIo } from './common.js';

/** Progress reporter; `update` is cheap to call on every block. */
export interface Progress {
  /** False when nothing is drawn (stderr is not a terminal): callers may then skip their per-block updates. */
  readonly active: boolean;
  /** `received` bytes of `total` (when known) so far. */
  update(received: number, total: number | undefined): void;
  /** Show a status text on the bar's line (a TTY only), until the next update. */
  note(text: string): void;
  /** End the line (if anything was drawn). Idempotent. */
  done(): void;
}

/** Redraw at most this often (ms), except for the final frame. */
const FRAME_MS = 100;

/** A bar on a TTY, nothing otherwise. `now` is monotonic ms. */
export function progressBar(io: CliIo, label: string, now: () => number = () => performance.now()): Progress {
  const out = io.stderr;
  if (!out.isTTY) return { active: false, update() {}, note() {}, done() {} };
  let first: { t: number; bytes: number } | undefined;
  let last = -Infinity;
  let drawn = false;
  let ended = false;
  const write = (line: string): void => {
    out.write(`\r${line}\x1b[K`);
    drawn = true;
    ended = false;
  };
  return {
    active: true,
    update(received, total) {
      const t = now();
      // The rate counts from the first update, so resumed bytes do not inflate it.
      first ??= { t, bytes: received };
      const final = total !== undefined && received >= total;
      if (t - last < FRAME_MS && !final) return;
      last = t;
      const secs = (t - first.t) / 1000;
      const rate = secs > 0 ? ` ${formatBytes((received - first.bytes) / secs)}/s` : '';
      write(frame(label, received, total, rate, out.columns ?? 80));
    },
    note(text) {
      write(`${label}: ${text}`);
      last = -Infinity; // the next update draws at once
    },
    done() {
      if (drawn && !ended) out.write('\n');
      ended = true;
    },
  };
}

function frame(label: string, received: number, total: number | undefined, rate: string, columns: number): string {
  if (total === undefined || total <= 0) return `${label} ${formatBytes(received)}${rate}`;
  const frac = Math.min(1, received / total);
  const width = Math.max(10, Math.min(40, columns - 50));
  const filled = Math.round(frac * width);
  const pct = `${Math.floor(frac * 100)}`.padStart(3);
  return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct}% ${formatBytes(received)}/${formatBytes(total)}${rate}`;
}

/** 1536 -> "1.5 KiB". */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n.toFixed(0) : n.toFixed(1)} ${units[i]}`;
}
