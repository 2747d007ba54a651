/**
 * A one-line progress bar for long transfers, drawn only on a terminal
 * (quiet when stderr is a pipe or file, so logs stay clean).
 */
import type { CliIo } from './common.js';

/** Progress reporter; `update` is cheap to call on every block. */
export interface Progress {
  update(received: number, total: number | undefined): void;
  done(): void;
}

/** A bar on a TTY, nothing otherwise. `now` is monotonic ms. */
export function progressBar(io: CliIo, label: string, now: () => number = () => performance.now()): Progress {
  const out = io.stderr;
  if (!out.isTTY) return { update() {}, done() {} };
  const started = now();
  let last = -Infinity;
  let drawn = false;
  const draw = (received: number, total: number | undefined): void => {
    const secs = Math.max((now() - started) / 1000, 1e-3);
    const rate = `${formatBytes(received / secs)}/s`;
    const width = Math.max(10, Math.min(40, (out.columns ?? 80) - 50));
    let line: string;
    if (total !== undefined && total > 0) {
      const frac = Math.min(1, received / total);
      const filled = Math.round(frac * width);
      line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(received)}/${formatBytes(total)} ${rate}`;
    } else {
      line = `${label} ${formatBytes(received)} ${rate}`;
    }
    out.write(`\r${line}\x1b[K`);
    drawn = true;
  };
  return {
    update(received, total) {
      const t = now();
      if (t - last < 100 && (total === undefined || received < total)) return;
      last = t;
      draw(received, total);
    },
    done() {
      if (drawn) out.write('\n');
    },
  };
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
