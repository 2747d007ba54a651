/**
 * A prebuilt index over a CoRE Link Format document (RFC 6690), so that a
 * filtered `GET /.well-known/core?rt=firmware` costs O(log n + matches)
 * instead of a walk over every link: the query filtering of RFC 6690 §4.1
 * (one `name=value` argument, `value*` a prefix match, `href` against the
 * target, any one of the space-separated values of an attribute) as a map
 * lookup for an exact value and a binary search over the sorted distinct
 * values for a prefix. The document is encoded once;
 * a filtered representation is a list of link numbers, read block by block
 * from the encoded links (no per-query encoding or hashing).
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bufferSource, ETAG_LENGTH, type ByteSource } from '../blockwise/source.js';
import { formatLinks, type Link } from '../codec/link-format.js';
import { ContentFormat } from '../codec/numbers.js';

/** The values of one attribute (or the targets, for href): each distinct value with its links, and the values sorted. */
interface Values {
  readonly byValue: ReadonlyMap<string, readonly number[]>;
  /** The distinct values in code-unit order, the order in which a prefix range is contiguous. */
  readonly sorted: readonly string[];
  /** Links where the attribute appears bare (`;obs`): they match only `name=*`. */
  readonly bare: readonly number[];
}

const encoder = new TextEncoder();
const COMMA = 0x2c;

/** An immutable index of one version of a link document. */
export class LinkIndex {
  /** The whole document (every link), as served for an unfiltered GET. */
  readonly all: ByteSource;
  /** One ETag per version of the document: every filtered view of it shares it. */
  readonly etag: Uint8Array;
  /** Index entries and search steps touched by {@link match}, in all (the work done, for tests and metrics). */
  visited = 0;
  private readonly doc: Uint8Array;
  private readonly starts: Uint32Array;
  private readonly ends: Uint32Array;
  private readonly href: Values;
  private readonly attrs = new Map<string, Values>();

  constructor(links: readonly Link[]) {
    const texts = links.map((l) => formatLinks([l]));
    this.doc = encoder.encode(texts.join(','));
    this.starts = new Uint32Array(links.length);
    this.ends = new Uint32Array(links.length);
    let at = 0;
    texts.forEach((t, i) => {
      this.starts[i] = at;
      at += Buffer.byteLength(t);
      this.ends[i] = at;
      at += 1;
    });
    this.etag = sha256(this.doc).slice(0, ETAG_LENGTH);
    this.all = bufferSource(this.doc, { etag: this.etag, contentFormat: ContentFormat.LINK_FORMAT });
    const href = new Map<string, number[]>();
    links.forEach((l, i) => addTo(href, l.target, i));
    this.href = freeze(href, []);
    const groups = new Map<string, { values: Map<string, number[]>; bare: number[] }>();
    links.forEach((l, i) => {
      for (const [name, v] of Object.entries(l.attributes)) {
        let g = groups.get(name);
        if (g === undefined) groups.set(name, (g = { values: new Map(), bare: [] }));
        if (v === true) g.bare.push(i);
        else {
          addTo(g.values, v, i);
          // RFC 6690 §4.1: a space-separated attribute matches by any one of its values too.
          if (v.includes(' ')) for (const token of v.split(' ')) addTo(g.values, token, i);
        }
      }
    });
    for (const [name, g] of groups) this.attrs.set(name, freeze(g.values, g.bare));
  }

  /** Number of links. */
  get size(): number {
    return this.starts.length;
  }

  /**
   * Link numbers matching one RFC 6690 §4.1 query argument, in document
   * order; undefined for "no filter" (no query, or one without "="), exactly
   * as {@link filterLinks} decides.
   */
  match(query: string | undefined): readonly number[] | undefined {
    if (query === undefined || !query.includes('=')) return undefined;
    const eq = query.indexOf('=');
    const name = query.slice(0, eq);
    let want = query.slice(eq + 1);
    const prefix = want.endsWith('*');
    if (prefix) want = want.slice(0, -1);
    const values = name === 'href' ? this.href : this.attrs.get(name);
    if (values === undefined) return [];
    if (!prefix) {
      // An exact value: its links, already in document order.
      const ids = values.byValue.get(want);
      this.visited += 1 + (ids?.length ?? 0);
      return ids ?? [];
    }
    const lists: (readonly number[])[] = [];
    for (let i = this.lowerBound(values.sorted, want); i < values.sorted.length; i++) {
      const v = values.sorted[i]!;
      this.visited++;
      if (!v.startsWith(want)) break;
      lists.push(values.byValue.get(v)!);
    }
    if (want === '' && values.bare.length > 0) lists.push(values.bare);
    if (lists.length === 1) return lists[0]!; // one value: its links as they are
    // Several values: a link may carry more than one of them (a full value and its tokens).
    const found = new Set<number>();
    for (const ids of lists) {
      for (const id of ids) found.add(id);
      this.visited += ids.length;
    }
    return [...found].sort((a, b) => a - b);
  }

  /** The representation of the links `ids` (from {@link match}), undefined meaning all of them. */
  source(ids: readonly number[] | undefined): ByteSource {
    if (ids === undefined) return this.all;
    // offsets[k]: where the k-th matching link starts in the filtered document.
    const offsets = new Float64Array(ids.length + 1);
    for (let k = 0; k < ids.length; k++) offsets[k + 1] = offsets[k]! + (this.ends[ids[k]!]! - this.starts[ids[k]!]!) + 1;
    const size = ids.length === 0 ? 0 : offsets[ids.length]! - 1;
    return {
      size,
      etag: this.etag,
      contentFormat: ContentFormat.LINK_FORMAT,
      read: (offset, length) => this.readFiltered(ids, offsets, size, offset, length),
    };
  }

  /** Bytes [offset, offset + length) of the document made of the links `ids`, joined by ",". */
  private readFiltered(ids: readonly number[], offsets: Float64Array, size: number, offset: number, length: number): Uint8Array {
    const end = Math.min(size, offset + length);
    const out = new Uint8Array(Math.max(0, end - offset));
    let k = upperBound(offsets, offset) - 1;
    for (let pos = offset; pos < end; k++) {
      const id = ids[k]!;
      const linkEnd = offsets[k]! + (this.ends[id]! - this.starts[id]!);
      if (pos < linkEnd) {
        const from = this.starts[id]! + (pos - offsets[k]!);
        const n = Math.min(linkEnd, end) - pos;
        out.set(this.doc.subarray(from, from + n), pos - offset);
        pos += n;
      }
      if (pos < end) out[pos++ - offset] = COMMA; // the separator after link k
    }
    return out;
  }

  /** First index whose value is >= `want` (code-unit order, the order prefix ranges are contiguous in). */
  private lowerBound(values: readonly string[], want: string): number {
    let lo = 0;
    let hi = values.length;
    while (lo < hi) {
      this.visited++;
      const mid = (lo + hi) >>> 1;
      if (values[mid]! < want) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** Record that link `i` has `value` (once, however often the value repeats in it). */
function addTo(map: Map<string, number[]>, value: string, i: number): void {
  const ids = map.get(value);
  if (ids === undefined) map.set(value, [i]);
  else if (ids[ids.length - 1] !== i) ids.push(i);
}

function freeze(map: Map<string, number[]>, bare: number[]): Values {
  return { byValue: map, sorted: [...map.keys()].sort(), bare };
}

/** Index of the first element of the ascending `a` that is greater than `x`. */
function upperBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
