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

/**
 * Walk one CBOR item in `bytes` without recursion, checking that it is
 * well-formed, uses definite lengths only, stays within `limits`, and fills
 * `bytes` exactly. Throws SUIT_MALFORMED or SUIT_LIMIT (labelled with `what`).
 */
export function scanCbor(bytes: Uint8Array, limits: CborLimits, what: string, onItem?: CborItemVisitor): void {
  let pos = 0;
  let items = 0;
  // Open containers (tags count as one child). For maps, the keys seen so far
  // (their encoded bytes): a duplicate key is malformed (RFC 8949 §5.6), and
  // cbor-x would silently keep the last one.
  const open: { start: number; left: number; map: boolean; keyStart: number; keys: Set<string> | undefined }[] = [];
  const end = bytes.length;
  const readArg = (ai: number): number => {
    if (ai < 24) return ai;
    const n = ai === 24 ? 1 : ai === 25 ? 2 : ai === 26 ? 4 : ai === 27 ? 8 : -1;
    if (n < 0) throw malformed(`${what}: reserved or indefinite CBOR length (additional info ${ai}) at byte ${pos - 1}`);
    if (pos + n > end) throw malformed(`${what}: truncated CBOR at byte ${pos}`);
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + bytes[pos + i]!;
    pos += n;
    return v; // above 2^53 loses precision, but is then far above any limit we compare with
  };
  do {
    if (pos >= end) throw malformed(`${what}: truncated CBOR at byte ${pos}`);
    const parent = open[open.length - 1];
    if (parent?.map && parent.left % 2 === 0) parent.keyStart = pos;
    const itemStart = pos;
    if (++items > limits.maxItems) throw new CoapfwError('SUIT_LIMIT', `${what}: more than ${limits.maxItems} CBOR items`);
    const ib = bytes[pos++]!;
    const major = ib >> 5;
    const ai = ib & 31;
    let children = 0;
    let isMap = false;
    switch (major) {
      case 0:
      case 1:
        readArg(ai);
        break;
      case 2:
      case 3: {
        const len = readArg(ai);
        if (len > end - pos) throw malformed(`${what}: string of ${len} bytes overruns the input at byte ${pos}`);
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
          const key = Buffer.from(bytes.buffer, bytes.byteOffset + top.keyStart, pos - top.keyStart).toString('latin1');
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
