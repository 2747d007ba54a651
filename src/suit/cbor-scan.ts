/**
 * The bounded well-formedness scan every untrusted CBOR byte string goes
 * through before cbor-x sees it (cbor.ts): an iterative walk (RFC 8949 §3,
 * no recursion, so no stack to exhaust) with limits on depth, container
 * length and item count, definite lengths only, only known SUIT/COSE tags,
 * and map keys unique by value.
 */
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

/** A SUIT_MALFORMED error (with `cause` when given). */
export function malformed(msg: string, cause?: unknown): CoapfwError {
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
