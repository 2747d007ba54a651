/**
 * The staging area of a single-bank layout (layout.ts): the signed envelope
 * and the digest top list of an update that overwrites the running image in
 * place, kept so that after a power cut the recovery loader can go on with
 * the same update without the update server's manifest (device/inplace.ts).
 *
 * ```
 * offset size field (big-endian)
 *      0    4 magic "CFST"
 *      4    1 version 1
 *      5    3 reserved, 0
 *      8    4 envelope length e
 *     12    4 top list length t
 *     16   32 SHA-256 over the envelope and the top list
 *     48      (padded to the write alignment) the envelope, then the top list
 * ```
 * Written as: erase the area, program the body, program the header last.
 * A cut anywhere leaves a header that does not parse or a body that does not
 * hash to it: "nothing staged", never a torn envelope taken for a real one.
 * What is staged is not trusted either way: the envelope is verified again
 * (signature, anti-rollback) before it is used, and the top list against the
 * signed root.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { equalBytes } from '@noble/curves/utils.js';
import { concatBytes } from '@noble/hashes/utils.js';
import { CoapfwError } from '../errors.js';
import { ERASED, alignUp, type FlashBackend } from './backend.js';
import type { FlashArea } from './layout.js';

const MAGIC = new Uint8Array([0x43, 0x46, 0x53, 0x54]);
const HEADER_BYTES = 48;

/** What a staging area holds. */
export interface Staged {
  readonly envelope: Uint8Array;
  readonly topList: Uint8Array;
}

function bodyOffset(writeAlignment: number): number {
  return alignUp(HEADER_BYTES, writeAlignment);
}

/** Bytes of envelope plus top list a staging area of `area.size` bytes holds. */
export function stagingCapacity(area: FlashArea, writeAlignment: number): number {
  return Math.max(0, area.size - bodyOffset(writeAlignment));
}

/**
 * Stage `envelope` and `topList` (see the file comment): one erase of the
 * area and two programs. TOO_LARGE when they do not fit, before anything is
 * erased.
 */
export async function writeStaging(flash: FlashBackend, area: FlashArea, staged: Staged): Promise<void> {
  const body = concatBytes(staged.envelope, staged.topList);
  const at = bodyOffset(flash.writeAlignment);
  if (body.length > stagingCapacity(area, flash.writeAlignment)) {
    throw new CoapfwError('TOO_LARGE', `staging: envelope and top list take ${body.length} bytes, the recovery area holds ${stagingCapacity(area, flash.writeAlignment)}`);
  }
  const header = new Uint8Array(at).fill(ERASED);
  const view = new DataView(header.buffer);
  header.set(MAGIC, 0);
  header[4] = 1;
  header.fill(0, 5, 8);
  view.setUint32(8, staged.envelope.length);
  view.setUint32(12, staged.topList.length);
  header.set(sha256(body), 16);
  await flash.erase(area.offset, area.size);
  if (body.length > 0) {
    const padded = new Uint8Array(alignUp(body.length, flash.writeAlignment)).fill(ERASED);
    padded.set(body);
    await flash.write(area.offset + at, padded);
  }
  await flash.write(area.offset, header);
}

/** What the area holds, or undefined when nothing complete is staged. */
export async function readStaging(flash: FlashBackend, area: FlashArea): Promise<Staged | undefined> {
  if (area.size < HEADER_BYTES) return undefined;
  const header = await flash.read(area.offset, HEADER_BYTES);
  if (!equalBytes(header.subarray(0, 4), MAGIC) || header[4] !== 1) return undefined;
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  const e = view.getUint32(8);
  const t = view.getUint32(12);
  if (e + t > stagingCapacity(area, flash.writeAlignment)) return undefined;
  const body = await flash.read(area.offset + bodyOffset(flash.writeAlignment), e + t);
  if (!equalBytes(sha256(body), header.subarray(16, 48))) return undefined;
  return { envelope: body.slice(0, e), topList: body.slice(e) };
}
