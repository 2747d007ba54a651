/**
 * Publishing a release: the checks every path to the store goes through
 * (`POST /pub/release`, `coapfw publish --db`), so that a release in the
 * database is always an envelope that verifies under the server's trust
 * anchors, names one vendor and one class, carries a sequence number above
 * every earlier release of the class, and whose every image the devices will
 * fetch is stored with the digest and size the manifest says.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { CoapfwError } from '../errors.js';
import { ALG } from '../suit/constants.js';
import { decodeEnvelope } from '../suit/decode.js';
import { summarizeEnvelope } from '../suit/describe.js';
import type { SuitLimits } from '../suit/limits.js';
import type { TrustPolicy } from '../suit/trust.js';
import { verifyEnvelope } from '../suit/verify.js';
import type { NewReleaseImage, Release, Urgency } from './model.js';
import type { Store } from './store.js';
import { checkSuitId } from './validate.js';

/** An image the manifest makes devices fetch. */
export interface ReleaseImageRef {
  /** Position in the release (component order; an A/B manifest has one per slot). */
  readonly index: number;
  readonly sha256: string;
  readonly size: number;
  readonly uri: string;
}

/** Where the bytes of images not yet in the store come from (the staging area, or the publisher's files). */
export type ImageSource = (sha256: string) => Uint8Array | undefined | Promise<Uint8Array | undefined>;

/** What to publish and how to check it. */
export interface PublishOptions {
  /** The anchors a release must be signed by. */
  readonly trust: TrustPolicy;
  readonly publisher: string;
  readonly urgency: Urgency;
  readonly downtimeS?: number;
  /** Images not yet stored: their bytes by SHA-256. */
  readonly images?: ImageSource;
  readonly limits?: Partial<SuitLimits>;
}

/** A published release, and the images it took from `images` (the caller may drop them from staging). */
export interface Published {
  readonly release: Release;
  readonly uploaded: readonly string[];
}

const bad = (msg: string): CoapfwError => new CoapfwError('INVALID_ARGUMENT', msg);
const CONTENT_ADDRESS = /\/fw\/sha256\/([0-9a-fA-F]{64})(?:[?#].*)?$/;

/** The one vendor and one class an envelope is for, as lower-case hex. */
function identityOf(summary: ReturnType<typeof summarizeEnvelope>): { vendorId: string; classId: string } {
  const one = (ids: string[], what: string): string => {
    if (ids.length !== 1) throw bad(`release: the manifest must set exactly one ${what} id, it sets ${ids.length}`);
    return checkSuitId(ids[0], `${what} id`);
  };
  return { vendorId: one(summary.vendorIds, 'vendor'), classId: one(summary.classIds, 'class') };
}

/** Every image a device may fetch (all slot choices), each once; integrated payloads (`#name`) travel in the envelope. */
export function releaseImages(envelope: Uint8Array, limits?: Partial<SuitLimits>): ReleaseImageRef[] {
  const summary = summarizeEnvelope(decodeEnvelope(envelope, limits), limits);
  if (summary.planError !== undefined) throw bad(`release: the manifest cannot be planned: ${summary.planError}`);
  const out: ReleaseImageRef[] = [];
  for (const img of summary.images) {
    if (img.action !== 'fetch' || img.uri === undefined || img.uri.startsWith('#')) continue;
    if (img.digest === undefined || img.size === undefined) throw bad(`release: the image at ${img.uri} has no ${img.digest === undefined ? 'digest' : 'size'}`);
    if (img.digest.alg !== ALG.sha256) throw bad(`release: the image at ${img.uri} has a digest of algorithm ${img.digest.alg}; images are stored by SHA-256`);
    const addressed = CONTENT_ADDRESS.exec(img.uri)?.[1]?.toLowerCase();
    if (addressed !== undefined && addressed !== img.digest.hex) throw bad(`release: ${img.uri} is the content address of another image than its digest ${img.digest.hex}`);
    if (out.some((o) => o.sha256 === img.digest!.hex)) continue;
    out.push({ index: out.length, sha256: img.digest.hex, size: img.size, uri: img.uri });
  }
  return out;
}

/** What a verified envelope publishes. */
export interface CheckedRelease {
  readonly vendorId: string;
  readonly classId: string;
  readonly sequence: number;
  readonly images: readonly ReleaseImageRef[];
}

/**
 * The checks of every publish path that need no database: the envelope
 * verifies under `trust`, names exactly one vendor and class and checks both
 * (verifyEnvelope with them), has a sequence number a JavaScript number
 * holds, and every image it fetches has a SHA-256 digest and a size.
 */
export function checkRelease(envelope: Uint8Array, trust: TrustPolicy, limits?: Partial<SuitLimits>): CheckedRelease {
  const summary = summarizeEnvelope(decodeEnvelope(envelope, limits), limits);
  const { vendorId, classId } = identityOf(summary);
  const verified = verifyEnvelope(envelope, { trust, vendorId: hexToBytes(vendorId), classId: hexToBytes(classId), limits });
  if (verified.sequenceNumber > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`release: sequence number ${verified.sequenceNumber} is above 2^53-1`);
  return { vendorId, classId, sequence: Number(verified.sequenceNumber), images: releaseImages(envelope, limits) };
}

/**
 * Verify `envelope` and store it as a release in one transaction. Errors:
 * the verification's own (SIGNATURE_INVALID, UNTRUSTED_KEY, SUIT_MALFORMED
 * ...: 4.00), INVALID_ARGUMENT (no single class, an image without digest or
 * size), ALREADY_EXISTS / CONFLICT (the sequence is taken, or not above the
 * newest of the class: 4.09; of two racing publishers exactly one wins),
 * BLOB_MISSING (an image neither stored nor given: 4.12).
 */
export async function publishEnvelope(store: Store, envelope: Uint8Array, options: PublishOptions): Promise<Published> {
  const { vendorId, classId, sequence, images: refs } = checkRelease(envelope, options.trust, options.limits);
  const latest = await store.latestRelease(classId);
  if (latest !== undefined && sequence === latest.sequence) throw new CoapfwError('ALREADY_EXISTS', `release: sequence ${sequence} of class ${classId} is already published`);
  if (latest !== undefined && sequence < latest.sequence) {
    throw new CoapfwError('CONFLICT', `release: sequence ${sequence} is not above the newest release ${latest.sequence} of class ${classId} (devices would refuse it as a rollback)`);
  }
  const images: NewReleaseImage[] = [];
  const uploaded: string[] = [];
  for (const ref of refs) {
    const stored = await store.blobSize(ref.sha256);
    if (stored !== undefined) {
      if (stored !== ref.size) throw bad(`release: the stored blob ${ref.sha256} has ${stored} bytes, the manifest says ${ref.size}`);
      images.push({ component: ref.index, sha256: ref.sha256, size: ref.size });
      continue;
    }
    const bytes = await options.images?.(ref.sha256);
    if (bytes === undefined) throw new CoapfwError('BLOB_MISSING', `release: image ${ref.sha256} (${ref.size} bytes, ${ref.uri}) is not uploaded: PUT /pub/blob/${ref.sha256} first`);
    if (bytes.length !== ref.size) throw bad(`release: the uploaded image ${ref.sha256} has ${bytes.length} bytes, the manifest says ${ref.size}`);
    images.push({ component: ref.index, bytes });
    uploaded.push(ref.sha256);
  }
  const release = await store.publishRelease({
    classId,
    vendorId,
    sequence,
    urgency: options.urgency,
    envelope,
    images,
    publisher: options.publisher,
    ...(options.downtimeS === undefined ? {} : { downtimeS: options.downtimeS }),
  });
  return { release, uploaded };
}
