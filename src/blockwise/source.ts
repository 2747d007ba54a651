/**
 * Random-access byte sources that Block2 serves from. A source is immutable
 * for its lifetime: its ETag names its bytes, so a client that resumes at any
 * block days later can tell whether it is still the same representation.
 */
import { sha256 } from '@noble/hashes/sha2.js';

/** Default ETag length: 8 bytes (the maximum, RFC 7252 §5.10.6) of the content's SHA-256. */
export const ETAG_LENGTH = 8;

/** Something Block2 can serve: fixed size, fixed ETag, readable at any offset. */
export interface ByteSource {
  readonly size: number;
  /** 1..8 bytes naming this exact content (a prefix of its SHA-256). */
  readonly etag: Uint8Array;
  /** Content-Format to announce, if any (RFC 7252 §12.3). */
  readonly contentFormat?: number;
  /** Bytes [offset, offset+length) clipped to the size. May be synchronous for cached data. */
  read(offset: number, length: number): Uint8Array | Promise<Uint8Array>;
}

/** A source over bytes held in memory; the ETag is a SHA-256 prefix unless given. */
export function bufferSource(bytes: Uint8Array, options: { etag?: Uint8Array; contentFormat?: number } = {}): ByteSource {
  const etag = options.etag ?? sha256(bytes).slice(0, ETAG_LENGTH);
  return {
    size: bytes.length,
    etag,
    contentFormat: options.contentFormat,
    read: (offset, length) => bytes.subarray(offset, Math.min(bytes.length, offset + length)),
  };
}
