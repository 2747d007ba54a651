/**
 * What a publisher serves for one release (issue 13): the signed envelope,
 * the image, its per-block digests and, when the release has a predecessor,
 * a delta from it with its own per-block digests, every blob under its
 * content address (`/fw/sha256/<sha256 of the blob>`, where `coapfw serve`
 * serves every file by content). The manifest offers the delta first and the
 * full image as the fallback (suit/delta-manifest.ts), so a device whose
 * installed image is not the delta's source still updates.
 *
 * File-served setups: write every blob into the served directory (under any
 * name: the server finds it by content), and the envelope where devices look.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { CoapfwError } from '../errors.js';
import { buildBlockDigests } from '../suit/block-digests.js';
import { createEnvelope, type SingleImageManifest } from '../suit/create.js';
import type { EnvelopeOptions } from '../suit/encode.js';
import type { SuitPrivateKey } from '../suit/keys.js';
import type { BlockDigestsInfo } from '../suit/types.js';
import { createDelta, type DeltaOptions } from './encode.js';

/** What `buildRelease` needs. */
export interface ReleaseInput extends Pick<SingleImageManifest, 'sequence' | 'vendorId' | 'classId' | 'componentId' | 'slot' | 'invoke'> {
  /** The new image. */
  readonly image: Uint8Array;
  /** The image devices run now: a delta from it to `image` is offered beside the full image. */
  readonly deltaFrom?: Uint8Array;
  /**
   * Bytes per authenticated block: the devices' CoAP block size (1024 for
   * SZX 6). Default 1024; 0: no block digests (devices then check only the
   * whole image, and single-bank devices cannot install the release).
   */
  readonly blockSize?: number;
  /** Delta frame size: a multiple of the devices' erase block. Default 4096. */
  readonly frameSize?: number;
  /** Delta frame compression. Default 'deflate'. */
  readonly compression?: DeltaOptions['compression'];
  /** Prefix of every content address in the manifest. Default '/fw/sha256/' (relative to the manifest's server). */
  readonly baseUri?: string;
}

/** One blob to serve. */
export interface ReleaseBlob {
  /** Its content address: `${baseUri}${hex}`. */
  readonly uri: string;
  /** Lower-case hex SHA-256 of `bytes`. */
  readonly hex: string;
  readonly bytes: Uint8Array;
  /** What it is. */
  readonly role: 'image' | 'image-digests' | 'delta' | 'delta-digests';
}

/** What `buildRelease` returns. */
export interface Release {
  /** The signed SUIT envelope. */
  readonly envelope: Uint8Array;
  /** Every blob to serve at its content address, image first. */
  readonly blobs: readonly ReleaseBlob[];
  /** The delta's size against the image's, when there is one (0.043 = 4.3 %). */
  readonly deltaRatio?: number;
}

function blob(bytes: Uint8Array, role: ReleaseBlob['role'], base: string): ReleaseBlob {
  const hex = bytesToHex(sha256(bytes));
  return { uri: `${base}${hex}`, hex, bytes, role };
}

/** Block digests of `bytes` and their blob, or nothing for blockSize 0. */
function digestsOf(bytes: Uint8Array, blockSize: number, role: 'image-digests' | 'delta-digests', base: string): { info?: BlockDigestsInfo; blob?: ReleaseBlob } {
  if (blockSize === 0) return {};
  // The digest resource's address is its own hash: name it once it is built (the uri is not part of the tree).
  const { info, resource } = buildBlockDigests(bytes, { blockSize });
  const b = blob(resource, role, base);
  return { info: { ...info, uri: b.uri }, blob: b };
}

/**
 * Build a release: `createDelta` (when `deltaFrom` is given) +
 * `buildBlockDigests` for the image and the delta + `createEnvelope({
 * blockDigests, delta })`, signed with every key.
 *
 * @example
 * const r = buildRelease({ sequence: 8, vendorId, classId, image: v2, deltaFrom: v1 }, [key]);
 * for (const b of r.blobs) await writeFile(`images/${b.hex}.${b.role}`, b.bytes);
 * await writeFile('images/app.suit', r.envelope);
 */
export function buildRelease(input: ReleaseInput, keys: readonly SuitPrivateKey[], opts?: EnvelopeOptions): Release {
  if (!(input?.image instanceof Uint8Array)) throw new CoapfwError('INVALID_ARGUMENT', 'buildRelease: image must be a Uint8Array');
  if (input.deltaFrom !== undefined && !(input.deltaFrom instanceof Uint8Array)) throw new CoapfwError('INVALID_ARGUMENT', 'buildRelease: deltaFrom must be a Uint8Array');
  const base = input.baseUri ?? '/fw/sha256/';
  const blockSize = input.blockSize ?? 1024;
  const image = blob(input.image, 'image', base);
  const imageDigests = digestsOf(input.image, blockSize, 'image-digests', base);
  const blobs: ReleaseBlob[] = [image, ...(imageDigests.blob ? [imageDigests.blob] : [])];
  const desc: SingleImageManifest = {
    sequence: input.sequence,
    vendorId: input.vendorId,
    classId: input.classId,
    uri: image.uri,
    digest: sha256(input.image),
    size: input.image.length,
    ...(input.componentId ? { componentId: input.componentId } : {}),
    ...(input.slot !== undefined ? { slot: input.slot } : {}),
    ...(input.invoke ? { invoke: input.invoke } : {}),
    ...(imageDigests.info ? { blockDigests: imageDigests.info } : {}),
  };
  if (input.deltaFrom === undefined) return { envelope: createEnvelope(desc, keys, opts), blobs };
  const frameSize = input.frameSize ?? 4096;
  const bytes = createDelta(input.deltaFrom, input.image, { frameSize, ...(input.compression ? { compression: input.compression } : {}) });
  const delta = blob(bytes, 'delta', base);
  const deltaDigests = digestsOf(bytes, blockSize, 'delta-digests', base);
  blobs.push(delta, ...(deltaDigests.blob ? [deltaDigests.blob] : []));
  const envelope = createEnvelope(
    {
      ...desc,
      delta: {
        uri: delta.uri,
        digest: sha256(bytes),
        size: bytes.length,
        sourceDigest: sha256(input.deltaFrom),
        sourceSize: input.deltaFrom.length,
        frameSize,
        ...(deltaDigests.info ? { blockDigests: deltaDigests.info } : {}),
      },
    },
    keys,
    opts,
  );
  return { envelope, blobs, deltaRatio: input.image.length === 0 ? 0 : bytes.length / input.image.length };
}
