/**
 * "Did you mean ...?" for a mistyped name (a command-line option, a key of a
 * JSON input): the closest known name by edit distance, if it is close.
 */

/** Levenshtein distance, ignoring case and the difference between '-', '_' and nothing. */
function distance(a: string, b: string): number {
  const x = a.toLowerCase().replace(/[-_]/g, '');
  const y = b.toLowerCase().replace(/[-_]/g, '');
  let prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    const row = [i];
    for (let j = 1; j <= y.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[y.length]!;
}

/**
 * The candidate closest to `name`, when it is within a third of the name's
 * length (at least 1, so `url` finds `uri`); undefined when nothing is close.
 *
 * @example
 * didYouMean('blocksize', ['block-size', 'resume']); // 'block-size'
 */
export function didYouMean(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = distance(name, c);
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  return bestD <= Math.max(1, Math.floor(name.length / 3)) ? best : undefined;
}
