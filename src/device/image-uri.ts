/**
 * Where the device fetches the image a manifest names. Our server publishes
 * images at `coap://host/fw/sha256/<hex>`; a manifest's URI may be absolute
 * or relative to the manifest's own URI (RFC 3986 §5.2 resolution).
 *
 * Same server only, for now: the image is always requested from the server
 * the manifest came from, using the path and query of the resolved URI; the
 * authority of an absolute URI is not contacted. That is safe because the
 * image is checked against the signed digest, and it keeps one connection
 * (one DTLS session) per update.
 */
import type { CoapOption } from '../codec/message.js';
import { parseCoapUri, uriOptions, type CoapUri } from '../codec/uri.js';
import { CoapfwError } from '../errors.js';

/** Resolve `imageUri` against `manifestUri`; BAD_URI if either is not a coap(s) URI. */
export function resolveImageUri(manifestUri: string, imageUri: string): CoapUri {
  parseCoapUri(manifestUri); // validates the base
  let resolved: string;
  try {
    resolved = new URL(imageUri, manifestUri).href;
  } catch (e) {
    throw new CoapfwError('BAD_URI', `manifest: cannot resolve image uri ${JSON.stringify(imageUri)}`, { cause: e });
  }
  return parseCoapUri(resolved);
}

/** Request options (Uri-Path, Uri-Query) for the image on the manifest's server. */
export function imageRequestOptions(manifestUri: string, imageUri: string): CoapOption[] {
  return uriOptions(resolveImageUri(manifestUri, imageUri));
}
