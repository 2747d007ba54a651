/**
 * The resume journal: what a device needs after a reboot to continue a
 * download where it stopped, the candidate update it is installing, and the
 * sequence number of the installed manifest (SUIT anti-rollback,
 * draft-ietf-suit-manifest §8.4.2), in a {@link RecordLog} in the layout's
 * `journal` area.
 *
 * The record and its encoding are in resume-record.ts (re-exported here).
 *
 * Fail closed (anti-rollback): the installed sequence number lives in this
 * journal, so "no record" must mean "fresh device", never "a record I cannot
 * read". `open` therefore also scans the area for any CRC-valid frame of the
 * journal's kind (record-log.ts framing, any payload size); when the newest
 * such frame is not a current-format record, `latest()` throws
 * `JOURNAL_CORRUPT` instead of reporting an empty journal, and the updater
 * refuses to run. Bytes that form no CRC-valid frame (a torn first append,
 * erased flash, garbage) and frames of other kinds still read as empty, so
 * a power cut never locks a device out of updates. {@link Journal.reset}
 * (provisioning) erases the area.
 *
 * Journal about once per erase block of image data, not per CoAP block:
 * resume from the start of the erase block holding `nextBlock` (see
 * `resumeOffset` and `writeImageChunk` in image.ts), since that block may
 * hold a torn write. The slot written is always the layout's secondary
 * slot (the swap model), so the record does not name it.
 */
import { CoapfwError } from '../errors.js';
import type { FlashBackend } from './backend.js';
import { crc32 } from './crc32.js';
import { checkLayout, type FlashLayout } from './layout.js';
import { RECORD_OVERHEAD, RecordLog, recordSize, type RecordLogStats } from './record-log.js';
import { decodeResumeRecord, encodeResumeRecord, RESUME_FORMAT_VERSION, RESUME_PAYLOAD_SIZE, type ResumeRecord } from './resume-record.js';

export {
  decodeResumeRecord,
  DIGEST_PREFIX_SIZE,
  digestPrefix,
  encodeResumeRecord,
  idleResumeRecord,
  matchesDigestPrefix,
  RESUME_FORMAT_VERSION,
  RESUME_PAYLOAD_SIZE,
  type ResumePhase,
  type ResumeRecord,
} from './resume-record.js';

/** Journal log kind (see record-log.ts). */
export const JOURNAL_KIND = 1;

/** First byte of every record-log frame (record-log.ts: magic, kind, u16 length, u32 seq, payload, CRC-32). */
const FRAME_MAGIC = 0xc5;

/** A CRC-valid journal-kind frame that is not a current-format record. */
interface ForeignFrame {
  seq: number;
  payloadSize: number;
  version: number | undefined;
}

/**
 * The newest CRC-valid frame of the journal's kind in `bytes` (the journal
 * area) whose payload is not a current-format record, at any offset of any
 * page (another format has another slot size). Undefined when there is none.
 */
function newestForeignFrame(bytes: Uint8Array, pageSize: number): ForeignFrame | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let newest: ForeignFrame | undefined;
  for (let page = 0; page < bytes.length; page += pageSize) {
    for (let at = page; at + RECORD_OVERHEAD <= page + pageSize; at++) {
      if (bytes[at] !== FRAME_MAGIC || bytes[at + 1] !== JOURNAL_KIND) continue;
      const n = view.getUint16(at + 2);
      const end = at + 8 + n;
      if (end + 4 > page + pageSize || view.getUint32(end) !== crc32(bytes.subarray(at, end))) continue;
      const version = n > 0 ? bytes[at + 8] : undefined;
      if (n === RESUME_PAYLOAD_SIZE && version === RESUME_FORMAT_VERSION) continue;
      const seq = view.getUint32(at + 4);
      if (newest === undefined || seq > newest.seq) newest = { seq, payloadSize: n, version };
    }
  }
  return newest;
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
  private constructor(
    private readonly log: RecordLog,
    private readonly foreign: ForeignFrame | undefined,
  ) {}

  /**
   * Open the journal in `layout.journal`, scanning for the newest valid
   * record and for records of another format (see the file comment).
   */
  static async open(flash: FlashBackend, layout: FlashLayout): Promise<Journal> {
    checkLayout(flash, layout);
    const log = await RecordLog.open(flash, layout.journal, { kind: JOURNAL_KIND, payloadSize: RESUME_PAYLOAD_SIZE });
    const bytes = await flash.read(layout.journal.offset, layout.journal.size);
    return new Journal(log, newestForeignFrame(bytes, flash.eraseBlockSize));
  }

  /**
   * Provisioning: erase the journal area (whatever it holds, any format) and
   * open the empty journal. Not power-safe by design: a cut leaves a journal
   * to reset again.
   */
  static async reset(flash: FlashBackend, layout: FlashLayout): Promise<Journal> {
    checkLayout(flash, layout);
    await flash.erase(layout.journal.offset, layout.journal.size);
    return Journal.open(flash, layout);
  }

  /** Bytes one record occupies on a chip with the given write alignment (80 for alignments up to 16). */
  static recordSize(writeAlignment: number): number {
    return recordSize(RESUME_PAYLOAD_SIZE, writeAlignment);
  }

  /**
   * The newest valid record; undefined only when the area holds no record at
   * all (a fresh device: nothing was ever completely written). Throws
   * `JOURNAL_CORRUPT` when the newest record cannot be used (another format
   * version or payload size, or impossible values): the installed sequence
   * number is then unknown, and treating it as 0 would let an older signed
   * manifest in (anti-rollback, RFC 9124 §4.3.2).
   */
  latest(): ResumeRecord | undefined {
    const rec = this.log.latest();
    const f = this.foreign;
    if (f !== undefined && (rec === undefined || f.seq >= rec.seq)) {
      throw new CoapfwError(
        'JOURNAL_CORRUPT',
        `journal: the newest record is in a format this firmware cannot read (${f.payloadSize}-byte payload, format version ` +
          `${f.version ?? 'none'}; expected ${RESUME_PAYLOAD_SIZE} bytes, version ${RESUME_FORMAT_VERSION}): the installed ` +
          'sequence number is unknown, so updates are refused until the device is re-provisioned',
      );
    }
    return rec === undefined ? undefined : decodeResumeRecord(rec.payload);
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
