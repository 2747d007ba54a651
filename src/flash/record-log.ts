/**
 * A power-safe log of fixed-size, CRC-protected records on NOR flash, where
 * each record is a complete snapshot of some state and the valid record with
 * the highest sequence number wins. The resume journal and the boot state
 * are both built on it.
 *
 * On-flash record (big-endian), padded with 0xFF to the write alignment:
 * ```
 * offset size field
 *      0    1 magic 0xC5
 *      1    1 kind (which log: 1 resume journal, 2 boot state)
 *      2    2 payload length n
 *      4    4 sequence number (previous + 1)
 *      8    n payload
 *    8+n    4 CRC-32 over bytes [0, 8+n)
 * ```
 * The area is a ring of erase blocks ("pages"); a page holds
 * floor(eraseBlockSize / recordSize) record slots. Appending writes the next
 * erased slot after the newest record, with one program operation. When the
 * page is full, the next page of the ring is erased and the record goes into
 * its first slot: since a record is a whole snapshot there is nothing else to
 * copy, and the previous page keeps the previous newest record until the new
 * one is complete.
 *
 * Why it survives a cut at any byte: a torn record fails its CRC (the CRC is
 * written last in the same program operation and covers everything before
 * it), so the previous record stays the newest valid one; a torn erase only
 * touches the page being recycled, which holds older records. Slots that are
 * neither erased nor valid (torn writes) are skipped, never rewritten; a
 * slot that a cut left entirely unprogrammed is still erased and is reused.
 */
import { CoapfwError } from '../errors.js';
import { ERASED, alignUp, isErased, type FlashBackend } from './backend.js';
import { crc32 } from './crc32.js';
import type { FlashArea } from './layout.js';

const MAGIC = 0xc5;
/** Bytes of framing around a payload: 8-byte header plus 4-byte CRC. */
export const RECORD_OVERHEAD = 12;

/** Options of {@link RecordLog.open}. */
export interface RecordLogOptions {
  /** Identifies the log (1..254); records of another kind are ignored. */
  kind: number;
  /** Exact payload length of every record. */
  payloadSize: number;
}

/** Counters of what a {@link RecordLog} did since it was opened. */
export interface RecordLogStats {
  /** Records appended (including one torn by a power cut). */
  appends: number;
  /** Bytes programmed (record slots, padding included). */
  bytesWritten: number;
  /** Pages erased to make room. */
  erases: number;
}

interface Position {
  page: number;
  slot: number;
}

/** The newest valid record of a log. */
export interface LogRecord {
  seq: number;
  payload: Uint8Array;
}

/** Size in flash of one record with `payloadSize` bytes of payload. */
export function recordSize(payloadSize: number, writeAlignment: number): number {
  return alignUp(payloadSize + RECORD_OVERHEAD, writeAlignment);
}

/** An append-only snapshot log in one flash area; see the file comment. */
export class RecordLog {
  readonly stats: RecordLogStats = { appends: 0, bytesWritten: 0, erases: 0 };
  private newest: (Position & LogRecord) | undefined;
  private constructor(
    private readonly flash: FlashBackend,
    private readonly area: FlashArea,
    private readonly kind: number,
    private readonly payloadSize: number,
    /** Bytes of one slot. */
    readonly recordSize: number,
    private readonly slotsPerPage: number,
    /** free[page][slot]: the slot reads all 0xFF. */
    private readonly free: boolean[][],
  ) {}

  /** Scan `area` and return the log, positioned after its newest valid record. */
  static async open(flash: FlashBackend, area: FlashArea, options: RecordLogOptions): Promise<RecordLog> {
    const { kind, payloadSize } = options;
    if (!Number.isInteger(kind) || kind < 1 || kind > 254) {
      throw new CoapfwError('INVALID_ARGUMENT', `record log: kind must be 1..254, got ${kind}`);
    }
    if (!Number.isInteger(payloadSize) || payloadSize < 0 || payloadSize > 0xffff) {
      throw new CoapfwError('INVALID_ARGUMENT', `record log: payloadSize must be 0..65535, got ${payloadSize}`);
    }
    const ebs = flash.eraseBlockSize;
    if (area.offset % ebs !== 0 || area.size % ebs !== 0 || area.size < 2 * ebs) {
      throw new CoapfwError('INVALID_ARGUMENT', `record log: area must be >= 2 aligned erase blocks of ${ebs}`);
    }
    const size = recordSize(payloadSize, flash.writeAlignment);
    const slotsPerPage = Math.floor(ebs / size);
    if (slotsPerPage < 1) {
      throw new CoapfwError('INVALID_ARGUMENT', `record log: a ${size}-byte record does not fit an erase block of ${ebs}`);
    }
    const pages = area.size / ebs;
    const bytes = await flash.read(area.offset, area.size);
    const free: boolean[][] = [];
    const log = new RecordLog(flash, area, kind, payloadSize, size, slotsPerPage, free);
    for (let page = 0; page < pages; page++) {
      free.push([]);
      for (let slot = 0; slot < slotsPerPage; slot++) {
        const at = page * ebs + slot * size;
        const rec = bytes.subarray(at, at + size);
        free[page]!.push(isErased(rec));
        const parsed = log.parse(rec);
        if (parsed && (log.newest === undefined || parsed.seq > log.newest.seq)) log.newest = { page, slot, ...parsed };
      }
    }
    return log;
  }

  /** The newest valid record, or undefined for an empty log. */
  latest(): LogRecord | undefined {
    return this.newest && { seq: this.newest.seq, payload: this.newest.payload.slice() };
  }

  /**
   * Append a record (one program operation, plus one page erase when the
   * current page is full). When this resolves the record is the newest; if
   * power is cut before, the previous newest record still wins.
   */
  async append(payload: Uint8Array): Promise<void> {
    if (payload.length !== this.payloadSize) {
      throw new CoapfwError('INVALID_ARGUMENT', `record log: payload must be ${this.payloadSize} bytes, got ${payload.length}`);
    }
    const seq = ((this.newest?.seq ?? 0) + 1) >>> 0;
    const pos = await this.nextPosition();
    const rec = new Uint8Array(this.recordSize).fill(ERASED);
    const view = new DataView(rec.buffer);
    rec[0] = MAGIC;
    rec[1] = this.kind;
    view.setUint16(2, payload.length);
    view.setUint32(4, seq);
    rec.set(payload, 8);
    view.setUint32(8 + payload.length, crc32(rec.subarray(0, 8 + payload.length)));
    // The slot is no longer erased, whatever happens during the write.
    this.free[pos.page]![pos.slot] = false;
    this.stats.appends++;
    this.stats.bytesWritten += rec.length;
    await this.flash.write(this.slotOffset(pos), rec);
    this.newest = { ...pos, seq, payload: payload.slice() };
  }

  private slotOffset(pos: Position): number {
    return this.area.offset + pos.page * this.flash.eraseBlockSize + pos.slot * this.recordSize;
  }

  /** First erased slot after the newest record in its page, else a freshly erased next page. */
  private async nextPosition(): Promise<Position> {
    const page = this.newest?.page ?? 0;
    const from = this.newest === undefined ? 0 : this.newest.slot + 1;
    for (let slot = from; slot < this.slotsPerPage; slot++) {
      if (this.free[page]![slot]) return { page, slot };
    }
    const next = (page + 1) % this.free.length;
    this.stats.erases++;
    await this.flash.erase(this.area.offset + next * this.flash.eraseBlockSize, this.flash.eraseBlockSize);
    this.free[next]!.fill(true);
    return { page: next, slot: 0 };
  }

  private parse(rec: Uint8Array): LogRecord | undefined {
    const n = this.payloadSize;
    if (rec[0] !== MAGIC || rec[1] !== this.kind) return undefined;
    const view = new DataView(rec.buffer, rec.byteOffset, rec.byteLength);
    if (view.getUint16(2) !== n) return undefined;
    if (view.getUint32(8 + n) !== crc32(rec.subarray(0, 8 + n))) return undefined;
    return { seq: view.getUint32(4), payload: rec.slice(8, 8 + n) };
  }
}
