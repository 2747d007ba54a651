/**
 * The resume journal: what a device needs after a reboot to continue a
 * download where it stopped, and the sequence number of the installed
 * manifest (SUIT anti-rollback, draft-ietf-suit-manifest §8.4.2), in a
 * {@link RecordLog} in the layout's `journal` area.
 *
 * Record payload (92 bytes, big-endian; 104 bytes on flash with the log's
 * 12 bytes of framing and CRC, padded to the write alignment):
 * ```
 * offset size field
 *      0    1 phase (0 idle, 1 fetching, 2 fetched, 3 installing)
 *      1    1 slot the image is written to (0 primary, 1 secondary)
 *      2    1 SZX of the Block2 transfer (0..6, RFC 7959 §2.2)
 *      3    1 ETag length (0..8, RFC 7252 §5.10.6)
 *      4    8 ETag, zero padded
 *     12    4 next Block2 NUM to fetch
 *     16    4 image size in bytes
 *     20    8 installed manifest sequence number (<= 2^53 - 1)
 *     28   32 SHA-256 of the SUIT envelope being installed
 *     60   32 SHA-256 of the image (from the manifest)
 * ```
 * Journal about once per erase block of image data, not per CoAP block:
 * resume from the start of the erase block holding `nextBlock` (see
 * `SlotWriter` in image.ts), since that block may hold a torn write.
 */
import { CoapfwError } from '../errors.js';
import type { FlashBackend } from './backend.js';
import { checkLayout, type FlashLayout } from './layout.js';
import { RecordLog, recordSize, type RecordLogStats } from './record-log.js';

/** Where a download stands. */
export type ResumePhase = 'idle' | 'fetching' | 'fetched' | 'installing';
const PHASES: readonly ResumePhase[] = ['idle', 'fetching', 'fetched', 'installing'];

/** One journal entry: a complete snapshot of the update client's durable state. */
export interface ResumeRecord {
  phase: ResumePhase;
  /** Slot being written (the swap model downloads into `secondary`). */
  slot: 'primary' | 'secondary';
  /** Block2 SZX in use (0..6). */
  szx: number;
  /** ETag of the image resource (0..8 bytes); resume only while it matches. */
  etag: Uint8Array;
  /** Next Block2 NUM to request. */
  nextBlock: number;
  /** Image size in bytes. */
  imageSize: number;
  /** Sequence number of the installed (running, confirmed) manifest. */
  installedSeq: number;
  /** SHA-256 of the envelope of the update in progress (32 bytes; zeros when idle). */
  envelopeDigest: Uint8Array;
  /** SHA-256 of the image of the update in progress (32 bytes; zeros when idle). */
  imageDigest: Uint8Array;
}

/** A record for a device with nothing in progress, running manifest `installedSeq`. */
export function idleResumeRecord(installedSeq: number): ResumeRecord {
  return {
    phase: 'idle',
    slot: 'secondary',
    szx: 0,
    etag: new Uint8Array(0),
    nextBlock: 0,
    imageSize: 0,
    installedSeq,
    envelopeDigest: new Uint8Array(32),
    imageDigest: new Uint8Array(32),
  };
}

/** Journal log kind (see record-log.ts). */
export const JOURNAL_KIND = 1;
/** Payload bytes of a resume record. */
export const RESUME_PAYLOAD_SIZE = 92;

const U32 = 0xffffffff;

function check(ok: boolean, message: string): void {
  if (!ok) throw new CoapfwError('INVALID_ARGUMENT', `journal: ${message}`);
}

/** Encode a record's payload; validates every field. */
export function encodeResumeRecord(r: ResumeRecord): Uint8Array {
  check(PHASES.includes(r.phase), `unknown phase ${String(r.phase)}`);
  check(r.slot === 'primary' || r.slot === 'secondary', `slot must be primary or secondary, got ${String(r.slot)}`);
  check(Number.isInteger(r.szx) && r.szx >= 0 && r.szx <= 6, `szx must be 0..6, got ${r.szx}`);
  check(r.etag instanceof Uint8Array && r.etag.length <= 8, 'etag must be 0..8 bytes');
  check(Number.isInteger(r.nextBlock) && r.nextBlock >= 0 && r.nextBlock <= U32, `nextBlock must be a u32, got ${r.nextBlock}`);
  check(Number.isInteger(r.imageSize) && r.imageSize >= 0 && r.imageSize <= U32, `imageSize must be a u32, got ${r.imageSize}`);
  check(Number.isSafeInteger(r.installedSeq) && r.installedSeq >= 0, `installedSeq must be a safe integer >= 0, got ${r.installedSeq}`);
  check(r.envelopeDigest instanceof Uint8Array && r.envelopeDigest.length === 32, 'envelopeDigest must be 32 bytes');
  check(r.imageDigest instanceof Uint8Array && r.imageDigest.length === 32, 'imageDigest must be 32 bytes');
  const out = new Uint8Array(RESUME_PAYLOAD_SIZE);
  const view = new DataView(out.buffer);
  out[0] = PHASES.indexOf(r.phase);
  out[1] = r.slot === 'primary' ? 0 : 1;
  out[2] = r.szx;
  out[3] = r.etag.length;
  out.set(r.etag, 4);
  view.setUint32(12, r.nextBlock);
  view.setUint32(16, r.imageSize);
  view.setBigUint64(20, BigInt(r.installedSeq));
  out.set(r.envelopeDigest, 28);
  out.set(r.imageDigest, 60);
  return out;
}

/** Decode a payload; `JOURNAL_CORRUPT` if a CRC-valid record holds impossible values. */
export function decodeResumeRecord(p: Uint8Array): ResumeRecord {
  if (p.length !== RESUME_PAYLOAD_SIZE) throw new CoapfwError('JOURNAL_CORRUPT', `journal: record payload has ${p.length} bytes`);
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const seq = view.getBigUint64(20);
  if (p[0]! >= PHASES.length || p[1]! > 1 || p[2]! > 6 || p[3]! > 8 || seq > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new CoapfwError('JOURNAL_CORRUPT', 'journal: newest record holds invalid values');
  }
  return {
    phase: PHASES[p[0]!]!,
    slot: p[1] === 0 ? 'primary' : 'secondary',
    szx: p[2]!,
    etag: p.slice(4, 4 + p[3]!),
    nextBlock: view.getUint32(12),
    imageSize: view.getUint32(16),
    installedSeq: Number(seq),
    envelopeDigest: p.slice(28, 60),
    imageDigest: p.slice(60, 92),
  };
}

/**
 * The resume journal of a device.
 *
 * @example
 * const journal = await Journal.open(flash, layout);
 * const last = journal.latest();            // undefined on a fresh device
 * await journal.append({ ...last!, nextBlock: 64 });
 */
export class Journal {
  private constructor(private readonly log: RecordLog) {}

  /** Open the journal in `layout.journal`, scanning for the newest valid record. */
  static async open(flash: FlashBackend, layout: FlashLayout): Promise<Journal> {
    checkLayout(flash, layout);
    return new Journal(await RecordLog.open(flash, layout.journal, { kind: JOURNAL_KIND, payloadSize: RESUME_PAYLOAD_SIZE }));
  }

  /** Bytes one record occupies on a chip with the given write alignment (104 for alignments up to 8). */
  static recordSize(writeAlignment: number): number {
    return recordSize(RESUME_PAYLOAD_SIZE, writeAlignment);
  }

  /** The newest valid record, or undefined if none was ever completely written. */
  latest(): ResumeRecord | undefined {
    const rec = this.log.latest();
    return rec && decodeResumeRecord(rec.payload);
  }

  /** Append a record: one program operation (plus an erase every `eraseBlockSize / recordSize` appends). */
  async append(record: ResumeRecord): Promise<void> {
    await this.log.append(encodeResumeRecord(record));
  }

  /** Appends, bytes programmed and erases since `open`. */
  get stats(): Readonly<RecordLogStats> {
    return this.log.stats;
  }
}
