/**
 * CBOR for SUIT on cbor-x, behind a bounded well-formedness scan.
 *
 * cbor-x is fast but trusts its input: a declared array length of 2^32, a
 * 10,000-deep nest or an exotic tag (cbor-x gives tags 28/29, 51 or 0xE000..
 * meaning of its own) would cost memory, stack or surprising objects. So every
 * untrusted byte string is first walked iteratively here (RFC 8949 §3), with
 * limits on depth, container length and item count, and only known SUIT/COSE
 * tags allowed; then cbor-x decodes it with Maps for maps (integer keys stay
 * integers: cbor-x turns them into strings otherwise).
 */
import { Decoder, Encoder, Tag } from 'cbor-x';
import { CoapfwError } from '../errors.js';

/** Resource limits for decoding one CBOR item. */
export interface CborLimits {
  /** Maximum nesting of arrays, maps and tags. */
  readonly maxDepth: number;
  /** Maximum entries of one array or pairs of one map. */
  readonly maxArrayLength: number;
  /** Maximum number of data items in the whole item. */
  readonly maxItems: number;
}

/** Tags SUIT and COSE use: envelope, manifest, COSE_Sign1/Sign/Mac/Mac0/Encrypt, cbor-pen. */
const ALLOWED_TAGS = new Set([107, 1070, 18, 98, 17, 97, 16, 96, 112]);

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });
const encoder = new Encoder({
  mapsAsObjects: false,
  useRecords: false,
  tagUint8Array: false,
  variableMapSize: true,
});

function malformed(msg: string, cause?: unknown): CoapfwError {
  return new CoapfwError('SUIT_MALFORMED', msg, cause === undefined ? undefined : { cause });
}

/** Called by `scanCbor` for every complete item: its nesting depth (0 = top) and byte range. */
export type CborItemVisitor = (depth: number, start: number, end: number) => void;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Walk one CBOR item in `bytes` without recursion, checking that it is
 * well-formed, uses definite lengths only, stays within `limits`, and fills
 * `bytes` exactly. Map keys must be integers, text strings, or arrays of
 * those and byte strings (SUIT text maps key by component id), and must be
 * unique BY VALUE (RFC 8949 §5.6): `03`, `18 03`, `19 00 03` and
 * `1b 00 .. 03` are the same key. Floats, simple values, tags and maps are
 * rejected as keys (a float 3.0 decodes to the JS number 3). Text strings
 * must be valid UTF-8 (RFC 8949 §3.1), so no two distinct strings decode to
 * the same JS string. Throws SUIT_MALFORMED or SUIT_LIMIT (labelled `what`).
 */
export function scanCbor(bytes: Uint8Array, limits: CborLimits, what: string, onItem?: CborItemVisitor): void {
  let pos = 0;
  let items = 0;
  // Open containers (tags count as one child). For maps, the canonical forms
  // of the keys seen so far: a duplicate key is malformed (RFC 8949 §5.6),
  // and cbor-x would silently keep the last one.
  const open: { start: number; left: number; map: boolean; keyStart: number; keys: Set<string> | undefined }[] = [];
  // Canonical form of the map key being scanned (its items, values not encodings).
  let keyCanon: string[] | undefined;
  const end = bytes.length;
  let argStart = 0;
  let argLen = 0;
  const readArg = (ai: number): number => {
    argStart = pos;
    argLen = 0;
    if (ai < 24) return ai;
    const n = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : -1;
    if (n < 0) throw malformed(`${what}: reserved or indefinite CBOR length (additional info ${ai}) at byte ${pos - 1}`);
    if (pos + n > end) throw malformed(`${what}: truncated CBOR at byte ${pos}`);
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + bytes[pos + i]!;
    argLen = n;
    pos += n;
    return v; // above 2^53 loses precision, but is then far above any limit we compare with
  };
  // The exact value of the last argument read (for keys, where precision matters).
  const exactArg = (ai: number): string => {
    if (argLen === 0) return String(ai);
    let v = 0n;
    for (let i = 0; i < argLen; i++) v = (v << 8n) | BigInt(bytes[argStart + i]!);
    return v.toString();
  };
  do {
    if (pos >= end) throw malformed(`${what}: truncated CBOR at byte ${pos}`);
    const parent = open[open.length - 1];
    if (parent?.map && parent.left % 2 === 0 && keyCanon === undefined) {
      parent.keyStart = pos;
      keyCanon = [];
    }
    const itemStart = pos;
    if (++items > limits.maxItems) throw new CoapfwError('SUIT_LIMIT', `${what}: more than ${limits.maxItems} CBOR items`);
    const ib = bytes[pos++]!;
    const major = ib >> 5;
    const ai = ib & 31;
    if (keyCanon !== undefined && major >= 5) {
      throw malformed(`${what}: map key at byte ${itemStart} is not an integer or text string (major type ${major})`);
    }
    let children = 0;
    let isMap = false;
    switch (major) {
      case 0:
      case 1:
        readArg(ai);
        keyCanon?.push(`${major}:${exactArg(ai)}`);
        break;
      case 2:
      case 3: {
        const len = readArg(ai);
        if (len > end - pos) throw malformed(`${what}: string of ${len} bytes overruns the input at byte ${pos}`);
        const content = bytes.subarray(pos, pos + len);
        if (major === 3) {
          try {
            utf8.decode(content);
          } catch {
            throw malformed(`${what}: text string at byte ${itemStart} is not valid UTF-8`);
          }
        }
        keyCanon?.push(`${major}:${len}:${Buffer.from(content.buffer, content.byteOffset, len).toString('latin1')}`);
        pos += len;
        break;
      }
      case 4:
      case 5: {
        const len = readArg(ai);
        if (len > limits.maxArrayLength) {
          throw new CoapfwError('SUIT_LIMIT', `${what}: ${major === 4 ? 'array' : 'map'} of ${len} entries exceeds ${limits.maxArrayLength}`);
        }
        children = major === 4 ? len : len * 2;
        isMap = major === 5;
        if (children > end - pos) throw malformed(`${what}: container of ${len} entries overruns the input`);
        keyCanon?.push(`4:${len}`);
        break;
      }
      case 6: {
        const tag = readArg(ai);
        if (!ALLOWED_TAGS.has(tag)) throw malformed(`${what}: unexpected CBOR tag ${tag}`);
        children = 1;
        break;
      }
      default: // 7: simple values and floats
        if (ai === 31 || (ai >= 28 && ai <= 30)) throw malformed(`${what}: unexpected CBOR simple/break byte 0x${ib.toString(16)}`);
        if (ai === 24) {
          if (pos + 1 > end) throw malformed(`${what}: truncated CBOR`);
          pos += 1;
        } else if (ai >= 25) {
          const n = ai === 25 ? 2 : ai === 26 ? 4 : 8;
          if (pos + n > end) throw malformed(`${what}: truncated CBOR`);
          pos += n;
        }
    }
    if (children > 0) {
      if (open.length >= limits.maxDepth) throw new CoapfwError('SUIT_LIMIT', `${what}: CBOR nesting deeper than ${limits.maxDepth}`);
      open.push({ start: itemStart, left: children, map: isMap, keyStart: 0, keys: isMap ? new Set() : undefined });
    } else {
      onItem?.(open.length, itemStart, pos);
      // The item ends at `pos`: count it in its container, closing every container it completes.
      while (open.length > 0) {
        const top = open[open.length - 1]!;
        if (top.keys && top.left % 2 === 0) {
          // A key of `top` is complete (keys hold no maps, so it is top's own).
          const key = keyCanon!.join('|');
          keyCanon = undefined;
          if (top.keys.has(key)) throw malformed(`${what}: duplicate map key at byte ${top.keyStart}`);
          top.keys.add(key);
        }
        top.left -= 1;
        if (top.left > 0) break;
        open.pop();
        onItem?.(open.length, top.start, pos);
      }
    }
  } while (open.length > 0);
  if (pos !== end) throw malformed(`${what}: ${end - pos} trailing bytes after the CBOR item`);
}

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
