/**
 * Suffix array by induced sorting (SA-IS: Nong, Zhang and Chan, "Two
 * Efficient Algorithms for Linear Time Suffix Array Construction", IEEE
 * Trans. Computers 60(10), 2011), linear time, about 9n bytes of memory for
 * n input bytes. The result includes the empty suffix first (index n), as
 * bsdiff's qsufsort output does, so a binary search can start at [0, n].
 */

/** Suffix array of `s`: n + 1 entries, entry 0 = n (the empty suffix). */
export function suffixArray(s: Uint8Array): Int32Array {
  const n = s.length;
  // Shift bytes up by one so 0 can be the unique, smallest sentinel.
  const t = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) t[i] = s[i]! + 1;
  t[n] = 0;
  const sa = new Int32Array(n + 1);
  if (n === 0) return sa;
  sais(t, sa, n + 1, 257);
  return sa;
}

function buckets(t: Int32Array, n: number, k: number, end: boolean): Int32Array {
  const b = new Int32Array(k);
  for (let i = 0; i < n; i++) b[t[i]!]!++;
  let sum = 0;
  for (let i = 0; i < k; i++) {
    sum += b[i]!;
    b[i] = end ? sum : sum - b[i]!;
  }
  return b;
}

function induce(t: Int32Array, sa: Int32Array, stype: Uint8Array, n: number, k: number): void {
  let b = buckets(t, n, k, false);
  for (let i = 0; i < n; i++) {
    const j = sa[i]! - 1;
    if (j >= 0 && stype[j] === 0) sa[b[t[j]!]!++] = j;
  }
  b = buckets(t, n, k, true);
  for (let i = n - 1; i >= 0; i--) {
    const j = sa[i]! - 1;
    if (j >= 0 && stype[j] === 1) sa[--b[t[j]!]!] = j;
  }
}

/** SA-IS on `t[0..n)` over alphabet [0, k), with t[n-1] the unique smallest symbol. */
function sais(t: Int32Array, sa: Int32Array, n: number, k: number): void {
  // stype[i] = 1 for S-type (suffix i smaller than suffix i+1), 0 for L-type.
  const stype = new Uint8Array(n);
  stype[n - 1] = 1;
  for (let i = n - 2; i >= 0; i--) stype[i] = t[i]! < t[i + 1]! || (t[i] === t[i + 1] && stype[i + 1] === 1) ? 1 : 0;
  const lms = (i: number): boolean => i > 0 && stype[i] === 1 && stype[i - 1] === 0;

  // 1. Sort the LMS substrings: place LMS positions at their bucket ends, induce.
  sa.fill(-1, 0, n);
  let b = buckets(t, n, k, true);
  for (let i = 1; i < n; i++) if (lms(i)) sa[--b[t[i]!]!] = i;
  induce(t, sa, stype, n, k);

  // 2. Name the sorted LMS substrings.
  let n1 = 0;
  for (let i = 0; i < n; i++) if (lms(sa[i]!)) sa[n1++] = sa[i]!;
  sa.fill(-1, n1, n);
  let name = 0;
  let prev = -1;
  for (let i = 0; i < n1; i++) {
    const pos = sa[i]!;
    let diff = prev < 0;
    for (let d = 0; !diff; d++) {
      if (t[pos + d] !== t[prev + d] || stype[pos + d] !== stype[prev + d]) diff = true;
      else if (d > 0 && (lms(pos + d) || lms(prev + d))) break;
    }
    if (diff) {
      name++;
      prev = pos;
    }
    sa[n1 + (pos >> 1)] = name - 1;
  }
  for (let i = n - 1, j = n - 1; i >= n1; i--) if (sa[i]! >= 0) sa[j--] = sa[i]!;

  // 3. Sort the reduced string (recursively when names repeat).
  const s1 = sa.subarray(n - n1, n);
  const sa1 = sa.subarray(0, n1);
  if (name < n1) sais(s1, sa1, n1, name);
  else for (let i = 0; i < n1; i++) sa1[s1[i]!] = i;

  // 4. Induce the full order from the sorted LMS suffixes.
  for (let i = 1, j = 0; i < n; i++) if (lms(i)) s1[j++] = i;
  for (let i = 0; i < n1; i++) sa1[i] = s1[sa1[i]!]!;
  sa.fill(-1, n1, n);
  b = buckets(t, n, k, true);
  for (let i = n1 - 1; i >= 0; i--) {
    const j = sa[i]!;
    sa[i] = -1;
    sa[--b[t[j]!]!] = j;
  }
  induce(t, sa, stype, n, k);
}
