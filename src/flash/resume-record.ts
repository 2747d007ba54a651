/**
 * The resume journal's record (journal.ts): a complete snapshot of the
 * update client's durable state, its encoding, and the digest prefixes it keeps.
 *
 * Record payload, format version 2 (68 bytes, big-endian; 80 bytes on flash
 * with the log's 12 bytes of framing and CRC, for write alignments up to 16):
 * ```
 * offset size field
 *      0    1 format version (2; see below)
 *      1    1 phase (low nibble: 0 idle, 1 fetching, 2 fetched, 3 installing,
 *             4 applying: a delta is being applied, see below);
 *             high nibble reserved: written 0, read as 0 or 1 (records
 *             written before the always-secondary slot field was dropped)
 *      2    1 SZX of the Block2 transfer (low nibble, 0..6, RFC 7959 §2.2)
 *             | ETag length << 4 (0..8, RFC 7252 §5.10.6)
 *      3    1 reverts: test boots of the candidate the bootloader reverted (u8)
 *      4    8 ETag of the image resource, zero padded
 *     12    4 next Block2 NUM to fetch (applying: the next delta frame)
 *     16    4 image size in bytes (applying: the byte offset of that frame in the delta)
 *     20    8 installed manifest sequence number (<= 2^53 - 1)
 *     28    8 candidate manifest sequence number (<= 2^53 - 1; 0 when idle)
 *     36   16 first 16 bytes of the SHA-256 of the SUIT envelope
 *     52   16 first 16 bytes of the SHA-256 of the image (from the manifest)
 * ```
 *
 * Why 16-byte digest prefixes are enough: the journal never vouches for an
 * envelope or an image, it only says "the progress recorded here belongs to
 * that one". On every resume the envelope is fetched again and its signature
 * verified, and its full digest is then compared with the recorded prefix
 * (plus the candidate sequence number); the image in the slot is hashed and
 * compared with the full digest of the freshly verified manifest before the
 * test boot; the boot model keeps full digests in its own records. A wrong
 * match would need two different envelopes (or images) that share 128 bits of
 * SHA-256: a second preimage costs about 2^128 work, and even a collision
 * (2^64) needs the signer's key for both envelopes. Its worst outcome is a
 * resumed download whose image then fails the full-digest check and is
 * fetched again. Compare with {@link matchesDigestPrefix}.
 *
 * Format version: byte 0 of the payload. A record of another version, or of
 * another payload size (the log returns only records of its configured
 * size), is never decoded as this one. No earlier format was ever released,
 * so there is nothing to migrate.
 *
 * Phase `applying` (device/delta-apply.ts): the image is being rebuilt from
 * a delta (src/delta/) into the slot. Frame `nextBlock` of the delta starts
 * at byte `imageSize` of it, every frame before it is written, and the ETag
 * and SZX are those of the delta's transfer. The delta's frames end on
 * erase-block multiples of the image, so this too is one record per erase
 * block; the image size is the manifest's (the job names the image).
 */
import { CoapfwError } from '../errors.js';

/** Where a download stands. */
export type ResumePhase = 'idle' | 'fetching' | 'fetched' | 'installing' | 'applying';
const PHASES: readonly ResumePhase[] = ['idle', 'fetching', 'fetched', 'installing', 'applying'];

/** One journal entry: a complete snapshot of the update client's durable state. */
export interface ResumeRecord {
  phase: ResumePhase;
  /** Block2 SZX in use (0..6). */
  szx: number;
  /** ETag of the image resource (0..8 bytes); resume only while it matches. */
  etag: Uint8Array;
  /** Next Block2 NUM to request (phase applying: the next delta frame). */
  nextBlock: number;
  /** Image size in bytes (phase applying: the byte offset of frame `nextBlock` in the delta). */
  imageSize: number;
  /** Sequence number of the installed (running, confirmed) manifest. */
  installedSeq: number;
  /** Sequence number of the manifest being downloaded or installed (0 when idle). */
  candidateSeq: number;
  /** Test boots of the candidate image that the bootloader reverted (0..255). */
  reverts: number;
  /** First 16 bytes of the SHA-256 of the envelope (see {@link digestPrefix}; zeros when unknown). */
  envelopeDigestPrefix: Uint8Array;
  /** First 16 bytes of the SHA-256 of the image (zeros when unknown). */
  imageDigestPrefix: Uint8Array;
}

/** Bytes of a digest the journal keeps (see the file comment for why 16 suffice). */
export const DIGEST_PREFIX_SIZE = 16;
const SHA256_SIZE = 32;

/** The part of a SHA-256 digest a {@link ResumeRecord} stores: its first 16 bytes (a copy). */
export function digestPrefix(digest: Uint8Array): Uint8Array {
  if (!(digest instanceof Uint8Array) || digest.length !== SHA256_SIZE) {
    throw new CoapfwError('INVALID_ARGUMENT', `journal: expected a 32-byte SHA-256 digest, got ${digest?.length} bytes`);
  }
  return digest.slice(0, DIGEST_PREFIX_SIZE);
}

/** Whether the full SHA-256 `digest` is the one a record's 16-byte `prefix` names. */
export function matchesDigestPrefix(digest: Uint8Array, prefix: Uint8Array): boolean {
  return (
    digest.length === SHA256_SIZE &&
    prefix.length === DIGEST_PREFIX_SIZE &&
    prefix.every((x, i) => x === digest[i])
  );
}

/**
 * A record for a device with nothing in progress, running manifest
 * `installedSeq`; `installed` names that manifest's envelope and image by
 * their 16-byte digest prefixes (zeros when unknown).
 */
export function idleResumeRecord(
  installedSeq: number,
  installed?: Pick<ResumeRecord, 'envelopeDigestPrefix' | 'imageDigestPrefix'>,
): ResumeRecord {
  return {
    phase: 'idle',
    szx: 0,
    etag: new Uint8Array(0),
    nextBlock: 0,
    imageSize: 0,
    installedSeq,
    candidateSeq: 0,
    reverts: 0,
    envelopeDigestPrefix: installed?.envelopeDigestPrefix.slice() ?? new Uint8Array(DIGEST_PREFIX_SIZE),
    imageDigestPrefix: installed?.imageDigestPrefix.slice() ?? new Uint8Array(DIGEST_PREFIX_SIZE),
  };
}

/** Format version in byte 0 of every payload this code writes. */
export const RESUME_FORMAT_VERSION = 2;
/** Payload bytes of a resume record. */
export const RESUME_PAYLOAD_SIZE = 68;

const U32 = 0xffffffff;
const MAX_SEQ = BigInt(Number.MAX_SAFE_INTEGER);

function check(ok: boolean, message: string): void {
  if (!ok) throw new CoapfwError('INVALID_ARGUMENT', `journal: ${message}`);
}

function checkSeq(v: number, name: string): void {
  check(Number.isSafeInteger(v) && v >= 0, `${name} must be a safe integer >= 0, got ${v}`);
}

/** Encode a record's payload; validates every field. */
export function encodeResumeRecord(r: ResumeRecord): Uint8Array {
  check(PHASES.includes(r.phase), `unknown phase ${String(r.phase)}`);
  check(Number.isInteger(r.szx) && r.szx >= 0 && r.szx <= 6, `szx must be 0..6, got ${r.szx}`);
  check(r.etag instanceof Uint8Array && r.etag.length <= 8, 'etag must be 0..8 bytes');
  check(Number.isInteger(r.nextBlock) && r.nextBlock >= 0 && r.nextBlock <= U32, `nextBlock must be a u32, got ${r.nextBlock}`);
  check(Number.isInteger(r.imageSize) && r.imageSize >= 0 && r.imageSize <= U32, `imageSize must be a u32, got ${r.imageSize}`);
  checkSeq(r.installedSeq, 'installedSeq');
  checkSeq(r.candidateSeq, 'candidateSeq');
  check(Number.isInteger(r.reverts) && r.reverts >= 0 && r.reverts <= 0xff, `reverts must be a u8, got ${r.reverts}`);
  for (const name of ['envelopeDigestPrefix', 'imageDigestPrefix'] as const) {
    check(r[name] instanceof Uint8Array && r[name].length === DIGEST_PREFIX_SIZE, `${name} must be ${DIGEST_PREFIX_SIZE} bytes`);
  }
  const out = new Uint8Array(RESUME_PAYLOAD_SIZE);
  const view = new DataView(out.buffer);
  out[0] = RESUME_FORMAT_VERSION;
  out[1] = PHASES.indexOf(r.phase);
  out[2] = r.szx | (r.etag.length << 4);
  out[3] = r.reverts;
  out.set(r.etag, 4);
  view.setUint32(12, r.nextBlock);
  view.setUint32(16, r.imageSize);
  view.setBigUint64(20, BigInt(r.installedSeq));
  view.setBigUint64(28, BigInt(r.candidateSeq));
  out.set(r.envelopeDigestPrefix, 36);
  out.set(r.imageDigestPrefix, 52);
  return out;
}

/**
 * Decode a payload. `JOURNAL_CORRUPT` if it has the wrong size or format
 * version, or if a CRC-valid record holds impossible values.
 */
export function decodeResumeRecord(p: Uint8Array): ResumeRecord {
  if (p.length !== RESUME_PAYLOAD_SIZE) throw new CoapfwError('JOURNAL_CORRUPT', `journal: record payload has ${p.length} bytes`);
  if (p[0] !== RESUME_FORMAT_VERSION) throw new CoapfwError('JOURNAL_CORRUPT', `journal: unknown record format version ${p[0]}`);
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const [phase, reserved, szx, etagLength] = [p[1]! & 0x0f, p[1]! >> 4, p[2]! & 0x0f, p[2]! >> 4];
  const installedSeq = view.getBigUint64(20);
  const candidateSeq = view.getBigUint64(28);
  if (phase >= PHASES.length || reserved > 1 || szx > 6 || etagLength > 8 || installedSeq > MAX_SEQ || candidateSeq > MAX_SEQ) {
    throw new CoapfwError('JOURNAL_CORRUPT', 'journal: newest record holds invalid values');
  }
  return {
    phase: PHASES[phase]!,
    szx,
    etag: p.slice(4, 4 + etagLength),
    nextBlock: view.getUint32(12),
    imageSize: view.getUint32(16),
    installedSeq: Number(installedSeq),
    candidateSeq: Number(candidateSeq),
    reverts: p[3]!,
    envelopeDigestPrefix: p.slice(36, 52),
    imageDigestPrefix: p.slice(52, 68),
  };
}
