/**
 * CBOR for SUIT on cbor-x, behind a bounded well-formedness scan.
 *
 * cbor-x is fast but trusts its input: a declared array length of 2^32, a
 * 10,000-deep nest or an exotic tag (cbor-x gives tags 28/29, 51 or 0xE000..
 * meaning of its own) would cost memory, stack or surprising objects. So every
 * untrusted byte string is first walked iteratively (RFC 8949 §3, cbor-scan.ts),
 * with limits on depth, container length and item count, and only known
 * SUIT/COSE tags allowed; then cbor-x decodes it with Maps for maps (integer
 * keys stay integers: cbor-x turns them into strings otherwise).
 */
import { Decoder, Encoder, Tag } from 'cbor-x';
import { malformed, scanCbor, type CborItemVisitor, type CborLimits } from './cbor-scan.js';

export { scanCbor, type CborItemVisitor, type CborLimits } from './cbor-scan.js';

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });
const encoder = new Encoder({
  mapsAsObjects: false,
  useRecords: false,
  tagUint8Array: false,
  variableMapSize: true,
});

/** Head of the CBOR item at `pos`: major type, argument (not beyond 2^53) and where its content starts. */
function readHead(bytes: Uint8Array, pos: number): { major: number; arg: number; next: number } {
  const ib = bytes[pos]!;
  const ai = ib & 31;
  const n = ai < 24 ? 0 : ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : 8;
  let arg = ai < 24 ? ai : 0;
  for (let i = 0; i < n; i++) arg = arg * 256 + bytes[pos + 1 + i]!;
  return { major: ib >> 5, arg, next: pos + 1 + n };
}

/**
 * The outermost tag of an encoded item and where the tagged content starts;
 * undefined when the item does not start with a tag. Lets a decoder tell
 * document kinds apart before it scans (the tag is not checked against the
 * allowed set here; the content still goes through `scanCbor`).
 */
export function leadingTag(bytes: Uint8Array): { tag: number; contentStart: number } | undefined {
  if (bytes.length === 0 || bytes[0]! >> 5 !== 6) return undefined;
  const ai = bytes[0]! & 31;
  const n = ai < 24 ? 0 : ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : -1;
  if (n < 0 || bytes.length < 1 + n) return undefined;
  const h = readHead(bytes, 0);
  return { tag: h.arg, contentStart: h.next };
}

/** The content of a byte string given by its exact encoding (header included); SUIT_MALFORMED if not a bstr. */
export function bstrContent(encoded: Uint8Array, what: string): Uint8Array {
  if (encoded.length === 0 || encoded[0]! >> 5 !== 2) throw malformed(`${what}: expected a byte string`);
  return encoded.subarray(readHead(encoded, 0).next);
}

/** One entry of a scanned map: its key (decoded) and the exact bytes of key and value. */
export interface MapEntrySpan {
  readonly key: unknown;
  readonly keyBytes: Uint8Array;
  readonly valueBytes: Uint8Array;
}

/** A map (possibly under tags) with every entry as encoded. */
export interface ScannedMap {
  /** Tags around the map, outermost first. */
  readonly tags: readonly number[];
  /** The bytes before the first entry: tag heads and the map head. */
  readonly head: Uint8Array;
  readonly entries: readonly MapEntrySpan[];
}

/**
 * Scan one CBOR item that must be a map (optionally tagged) and return its
 * entries as byte spans of `bytes`: the single source of truth for members
 * whose exact encoding matters (digests, signatures). Keys are unique by value.
 */
export function scanMap(bytes: Uint8Array, limits: CborLimits, what: string): ScannedMap {
  const items: [number, number, number][] = [];
  scanCbor(bytes, limits, what, (depth, start, end) => {
    items.push([depth, start, end]);
  });
  // Well-formed: read the tag heads, then the map head.
  const tags: number[] = [];
  let pos = 0;
  let h = readHead(bytes, pos);
  while (h.major === 6) {
    tags.push(h.arg);
    pos = h.next;
    h = readHead(bytes, pos);
  }
  if (h.major !== 5) throw malformed(`${what}: expected a map`);
  // The map's keys and values are the complete items one level below it, in order.
  const spans = items.filter(([depth]) => depth === tags.length + 1).map(([, start, end]) => [start, end] as const);
  const entries: MapEntrySpan[] = [];
  for (let i = 0; i + 1 < spans.length; i += 2) {
    const keyBytes = bytes.subarray(spans[i]![0], spans[i]![1]);
    let key: unknown;
    try {
      key = decoder.decode(keyBytes);
    } catch (e) {
      throw malformed(`${what}: undecodable map key: ${(e as Error).message}`, e);
    }
    entries.push({ key, keyBytes, valueBytes: bytes.subarray(spans[i + 1]![0], spans[i + 1]![1]) });
  }
  return { tags, head: bytes.subarray(0, h.next), entries };
}

/** Scan (reporting items to `onItem`), then decode one CBOR item with cbor-x (maps as Map). */
export function decodeCbor(bytes: Uint8Array, limits: CborLimits, what: string, onItem?: CborItemVisitor): unknown {
  scanCbor(bytes, limits, what, onItem);
  try {
    return decoder.decode(bytes);
  } catch (e) {
    throw malformed(`${what}: undecodable CBOR: ${(e as Error).message}`, e);
  }
}

/** Encode a value (Maps, arrays, Uint8Array as bstr, Tag) with cbor-x, shortest heads. */
export function encodeCbor(value: unknown): Uint8Array {
  return new Uint8Array(encoder.encode(value));
}

/** The encoding of `bytes` as a CBOR byte string: what SUIT digests when it says "bstr-wrapped". */
export function bstrWrap(bytes: Uint8Array): Uint8Array {
  return encodeCbor(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** A CBOR tag for encoding. */
export function tagged(tag: number, value: unknown): Tag {
  return new Tag(value, tag);
}

/** True when `v` is a cbor-x Tag with the given number. */
export function isTag(v: unknown, tag: number): v is Tag {
  return v instanceof Tag && v.tag === tag;
}

/** Encode-side integer: a bigint that fits a JS number becomes one, so cbor-x uses the shortest head. */
export function cborInt(v: bigint | number): bigint | number {
  if (typeof v === 'number') return v;
  return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
}

/** A Buffer view of bytes for cbor-x encoding as bstr (no copy). */
export function bstr(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export { Tag };
