/**
 * The `coapfw-block-digests` SUIT parameter (key COAPFW_PARAM.blockDigests,
 * -25601, in the Private Use range of the SUIT Parameters registry): binds an
 * image's per-block Merkle root (src/suit/block-digests.ts) into the signed
 * manifest, beside suit-parameter-image-digest of the same component.
 *
 * ```cddl
 * suit-parameter-coapfw-block-digests = -25601
 * SUIT_Parameters //= (suit-parameter-coapfw-block-digests => bstr .cbor COAPFW_Block_Digests)
 * COAPFW_Block_Digests = [
 *   alg: int,           ; COSE hash algorithm of leaves and nodes: -16 (SHA-256)
 *   block-size: uint,   ; bytes per block, a power of two
 *   page-leaves: uint,  ; leaves per page of the digest list, a power of two
 *   image-size: uint,   ; bytes the tree covers (= suit-parameter-image-size)
 *   root: bstr .size 32,; RFC 9162 Merkle Tree Hash over the leaves
 *   ? uri: tstr,        ; where the digest resource is served
 * ]
 * ```
 * A processor that does not know the key skips it (draft-ietf-suit-manifest-37
 * §8.4.8: custom parameters are negative integers) and still checks the whole
 * image against suit-parameter-image-digest; the parameter only lets a
 * processor that knows it reject a bad block earlier.
 */
import { CoapfwError } from '../errors.js';
import { bstr, decodeCbor, encodeCbor } from './cbor.js';
import { checkBlockDigestsInfo } from './block-digests.js';
import { COAPFW_PARAM } from './constants.js';
import { suitLimits, type SuitLimits } from './limits.js';
import type { BlockDigestsInfo, SuitParameters } from './types.js';
import { asArray, asBytes, asInt, asText, asUint, malformed } from './values.js';

/** The CBOR of a COAPFW_Block_Digests (the content of the parameter's bstr). */
export function encodeBlockDigests(info: BlockDigestsInfo): Uint8Array {
  checkBlockDigestsInfo(info, 'coapfw-block-digests');
  const a: unknown[] = [info.alg, info.blockSize, info.pageLeaves, info.imageSize, bstr(info.root)];
  if (info.uri !== undefined) a.push(info.uri);
  return encodeCbor(a);
}

/**
 * The parameter as an entry for `SuitParameters.other`:
 * `{ ..., other: new Map([blockDigestsParameter(info)]) }`.
 */
export function blockDigestsParameter(info: BlockDigestsInfo): [number, Uint8Array] {
  return [COAPFW_PARAM.blockDigests, bstr(encodeBlockDigests(info))];
}

/**
 * Decode a COAPFW_Block_Digests from the parameter's value (a bstr). Throws
 * SUIT_MALFORMED on a wrong shape, SUIT_UNSUPPORTED on another algorithm.
 */
export function decodeBlockDigests(value: unknown, limits?: Partial<SuitLimits>): BlockDigestsInfo {
  const what = 'coapfw-block-digests';
  const a = asArray(decodeCbor(asBytes(value, what), suitLimits(limits), what), what);
  if (a.length < 5 || a.length > 6) throw malformed(`${what}: expected 5 or 6 elements, got ${a.length}`);
  const info: BlockDigestsInfo = {
    alg: asInt(a[0], `${what} alg`),
    blockSize: asUint(a[1], `${what} block-size`),
    pageLeaves: asUint(a[2], `${what} page-leaves`),
    imageSize: asUint(a[3], `${what} image-size`),
    root: asBytes(a[4], `${what} root`),
    ...(a.length === 6 ? { uri: asText(a[5], `${what} uri`) } : {}),
  };
  try {
    checkBlockDigestsInfo(info, what);
  } catch (e) {
    const msg = (e as Error).message;
    throw new CoapfwError(msg.includes('algorithm') ? 'SUIT_UNSUPPORTED' : 'SUIT_MALFORMED', msg, { cause: e });
  }
  return info;
}

/**
 * The block digests a component's parameters carry, or undefined. When
 * `imageSize` is set too, the two must agree (SUIT_MALFORMED otherwise):
 * a root over a different length authenticates a different image.
 */
export function blockDigestsOf(params: SuitParameters, limits?: Partial<SuitLimits>): BlockDigestsInfo | undefined {
  const v = params.other?.get(COAPFW_PARAM.blockDigests);
  if (v === undefined) return undefined;
  const info = decodeBlockDigests(v, limits);
  if (params.imageSize !== undefined && params.imageSize !== info.imageSize) {
    throw malformed(`coapfw-block-digests: covers ${info.imageSize} bytes, suit-parameter-image-size says ${params.imageSize}`);
  }
  return info;
}
