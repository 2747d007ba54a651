/**
 * Building a manifest from the image itself: its SHA-256, its size and its
 * content address (`/fw/sha256/<hex>`, where `coapfw serve` serves every file
 * by content, immutable and resumable). Pure: it takes the image bytes; the
 * caller reads the file.
 */
import { CoapfwError } from '../errors.js';
import type { JsonComponent, JsonManifest } from './compile.js';
import { ALG } from './constants.js';
import { computeDigest } from './digest.js';
import type { SuitDigest } from './types.js';
import { toHex } from './values.js';

/** What a manifest says about an image. */
export interface ImageDescription {
  /** SHA-256 of the image. */
  readonly digest: SuitDigest;
  readonly size: number;
  /** Its content address, relative to the manifest's server: `/fw/sha256/<hex>`. */
  readonly uri: string;
}

/**
 * Digest, size and content address of `image`: what `createEnvelope` needs
 * besides the sequence number and the device identity.
 *
 * @example
 * const { digest, size, uri } = describeImage(bytes);
 * const env = createEnvelope({ sequence: 5, vendorId, classId, digest, size, uri }, [key]);
 */
export function describeImage(image: Uint8Array): ImageDescription {
  if (!(image instanceof Uint8Array)) throw new CoapfwError('INVALID_ARGUMENT', 'describeImage: expected the image bytes');
  const digest = computeDigest(ALG.sha256, image);
  return { digest, size: image.length, uri: `/fw/sha256/${toHex(digest.bytes)}` };
}

/** The distinct "file" names of a JSON input, in order, for the caller to read. */
export function imageFiles(json: JsonManifest): string[] {
  const files = (json.components ?? []).map((c) => c.file).filter((f): f is string => typeof f === 'string');
  return [...new Set(files)];
}

/**
 * A copy of `json` where each component's "file" is replaced by what the
 * image says: install-digest and install-size, and the content address as
 * "uri" when the component gives none. `images(file)` returns the bytes of a
 * file named in the input. A digest, size or content address given beside
 * "file" that does not match the image is an error (a stale copy-paste), as is
 * a file `images` does not know.
 */
export function withImages(json: JsonManifest, images: (file: string) => Uint8Array | undefined): JsonManifest {
  if (!Array.isArray(json?.components)) return json;
  const components = json.components.map((c, n): JsonComponent => {
    if (c?.file === undefined) return c;
    const { file, ...rest } = c;
    const w = `components[${n}]`;
    const bytes = images(file);
    if (bytes === undefined) throw new CoapfwError('INVALID_ARGUMENT', `${w} file: no image bytes given for '${file}'`);
    const img = describeImage(bytes);
    const hex = toHex(img.digest.bytes);
    const given = rest['install-digest']?.['digest-bytes'];
    if (given !== undefined && String(given).toLowerCase() !== hex) throw new CoapfwError('DIGEST_MISMATCH', `${w}: install-digest is not the SHA-256 of '${file}' (${hex})`);
    if (rest['install-size'] !== undefined && rest['install-size'] !== img.size) {
      throw new CoapfwError('INVALID_ARGUMENT', `${w}: install-size ${rest['install-size']} but '${file}' has ${img.size} bytes`);
    }
    const addressed = rest.uri === undefined ? undefined : /\/fw\/sha256\/([0-9a-fA-F]{64})$/.exec(rest.uri)?.[1];
    if (addressed !== undefined && addressed.toLowerCase() !== hex) {
      throw new CoapfwError('DIGEST_MISMATCH', `${w}: uri '${rest.uri}' is the content address of another image, not of '${file}' (${img.uri})`);
    }
    return { ...rest, 'install-digest': { 'algorithm-id': 'sha256', 'digest-bytes': hex }, 'install-size': img.size, uri: rest.uri ?? img.uri };
  });
  return { ...json, components };
}
