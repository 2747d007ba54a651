/**
 * Matching for the delta encoder: Colin Percival's bsdiff algorithm ("Naive
 * differences of executable code", 2003). A suffix array of the source finds,
 * at each target position, the longest exact match; a match is taken only
 * when it beats, by more than 8 bytes, what simply continuing the previous
 * alignment would give, and each taken alignment is then extended forwards
 * and backwards as long as at least half the bytes agree. The extended
 * stretches become ADD commands (target = source + sparse byte differences:
 * moved code whose addresses changed), the gaps INSERT commands.
 */
import { suffixArray } from './suffix-array.js';

/** One encoder command over the whole target, before framing. */
export type DeltaOp =
  /** target[to, to + len) = source[from, from + len) + diff */
  | { readonly kind: 'add'; readonly to: number; readonly from: number; readonly len: number }
  /** target[to, to + len) literally */
  | { readonly kind: 'insert'; readonly to: number; readonly len: number };

/** Length of the common prefix of a[ai..] and b[bi..]. */
function matchLen(a: Uint8Array, ai: number, b: Uint8Array, bi: number): number {
  const n = Math.min(a.length - ai, b.length - bi);
  let i = 0;
  while (i < n && a[ai + i] === b[bi + i]) i++;
  return i;
}

/** Compare source[si..] with target[ti..] over their common length: <0, 0, >0. */
function compare(src: Uint8Array, si: number, tgt: Uint8Array, ti: number): number {
  const n = Math.min(src.length - si, tgt.length - ti);
  for (let i = 0; i < n; i++) {
    const d = src[si + i]! - tgt[ti + i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Longest match of target[ti..] in the source, by binary search of the suffix array. */
function search(sa: Int32Array, src: Uint8Array, tgt: Uint8Array, ti: number): { len: number; pos: number } {
  let st = 0;
  let en = src.length;
  while (en - st >= 2) {
    const x = st + ((en - st) >> 1);
    if (compare(src, sa[x]!, tgt, ti) < 0) st = x;
    else en = x;
  }
  const a = matchLen(src, sa[st]!, tgt, ti);
  const b = matchLen(src, sa[en]!, tgt, ti);
  return a > b ? { len: a, pos: sa[st]! } : { len: b, pos: sa[en]! };
}

/** bsdiff's forward/backward extension of an alignment and the resolution of their overlap. */
function extend(src: Uint8Array, tgt: Uint8Array, lastScan: number, lastPos: number, scan: number, pos: number): { lenf: number; lenb: number } {
  let s = 0;
  let sf = 0;
  let lenf = 0;
  for (let i = 0; lastScan + i < scan && lastPos + i < src.length; ) {
    if (src[lastPos + i] === tgt[lastScan + i]) s++;
    i++;
    if (s * 2 - i > sf * 2 - lenf) {
      sf = s;
      lenf = i;
    }
  }
  let lenb = 0;
  if (scan < tgt.length) {
    let sb = 0;
    s = 0;
    for (let i = 1; scan >= lastScan + i && pos >= i; i++) {
      if (src[pos - i] === tgt[scan - i]) s++;
      if (s * 2 - i > sb * 2 - lenb) {
        sb = s;
        lenb = i;
      }
    }
  }
  if (lastScan + lenf > scan - lenb) {
    const overlap = lastScan + lenf - (scan - lenb);
    let ss = 0;
    let lens = 0;
    s = 0;
    for (let i = 0; i < overlap; i++) {
      if (tgt[lastScan + lenf - overlap + i] === src[lastPos + lenf - overlap + i]) s++;
      if (tgt[scan - lenb + i] === src[pos - lenb + i]) s--;
      if (s > ss) {
        ss = s;
        lens = i + 1;
      }
    }
    lenf += lens - overlap;
    lenb -= lens;
  }
  return { lenf, lenb };
}

/** The commands that rebuild `target` from `source` (covering the target exactly, in order). */
export function diffOps(source: Uint8Array, target: Uint8Array): DeltaOp[] {
  const ops: DeltaOp[] = [];
  const push = (lastScan: number, lastPos: number, lenf: number, insertEnd: number): void => {
    if (lenf > 0) ops.push({ kind: 'add', to: lastScan, from: lastPos, len: lenf });
    if (insertEnd > lastScan + lenf) ops.push({ kind: 'insert', to: lastScan + lenf, len: insertEnd - lastScan - lenf });
  };
  if (source.length === 0) {
    push(0, 0, 0, target.length);
    return ops;
  }
  const sa = suffixArray(source);
  let scan = 0;
  let len = 0;
  let pos = 0;
  let lastScan = 0;
  let lastPos = 0;
  let lastOffset = 0;
  while (scan < target.length) {
    let oldScore = 0;
    scan += len;
    for (let scsc = scan; scan < target.length; scan++) {
      ({ len, pos } = search(sa, source, target, scan));
      for (; scsc < scan + len; scsc++) if (scsc + lastOffset < source.length && source[scsc + lastOffset] === target[scsc]) oldScore++;
      if ((len === oldScore && len !== 0) || len > oldScore + 8) break;
      if (scan + lastOffset < source.length && source[scan + lastOffset] === target[scan]) oldScore--;
    }
    if (len !== oldScore || scan === target.length) {
      const { lenf, lenb } = extend(source, target, lastScan, lastPos, scan, pos);
      push(lastScan, lastPos, lenf, scan - lenb);
      lastScan = scan - lenb;
      lastPos = pos - lenb;
      lastOffset = pos - scan;
    }
  }
  return ops;
}
