/**
 * An append-only file of framed records, the gateway's durable memory (the
 * report queue keeps itself in one). Power and crash safety come from three
 * rules:
 *
 * - A record is durable once {@link RecordJournal.append} resolves: it was
 *   written and `fdatasync`ed. Callers acknowledge nothing before that.
 * - Each record carries its length and a CRC-32 over type and payload. On
 *   open, the file is read up to the first record that is incomplete or fails
 *   its CRC, and cut there: that is a write a crash tore, never one anybody
 *   was told had happened. The bytes cut are reported, not hidden.
 * - Compaction writes the live records to a temporary file, syncs it, renames
 *   it over the old one and syncs the directory, so a crash leaves the old
 *   file or the new one, never a mix.
 *
 * Appends that arrive while a sync is running are written together and synced
 * once (group commit): a hundred devices reporting at once cost a few syncs.
 *
 * Format: an 8-byte header `CFWJ` + version (u32 BE, 1), then records
 * `length (u32 BE, of type + payload) | crc32 (u32 BE) | type (u8) | payload`.
 */
import { constants } from 'node:fs';
import { open, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { concatBytes } from '@noble/hashes/utils.js';
import { crc32 } from '../flash/crc32.js';
import { CoapfwError } from '../errors.js';

/** One record: a small type number and its payload. */
export interface JournalRecord {
  readonly type: number;
  readonly payload: Uint8Array;
}

/** What {@link RecordJournal.open} found. */
export interface JournalOpen {
  readonly journal: RecordJournal;
  readonly records: JournalRecord[];
  /** Bytes cut from the end: a torn last write (0 when the file was clean). */
  readonly truncatedBytes: number;
}

/** Options of {@link RecordJournal.open}. */
export interface JournalOptions {
  /** Largest file that will be read at open (a bound on memory). Default 64 MiB. */
  readonly maxFileBytes?: number;
  /** Largest payload of one record. Default 1 MiB. */
  readonly maxRecordBytes?: number;
  /** fdatasync after each group of appends. Default true; false only for tests and benchmarks that accept losing writes. */
  readonly sync?: boolean;
}

const MAGIC = Uint8Array.of(0x43, 0x46, 0x57, 0x4a); // "CFWJ"
const VERSION = 1;
const HEADER_BYTES = 8;
const FRAME_BYTES = 9;
const RW_CREATE = constants.O_RDWR | constants.O_CREAT;

/** A journal file open for appending. */
export class RecordJournal {
  private size: number;
  private queue: Array<{ bytes: Uint8Array; done: () => void; fail: (e: unknown) => void }> = [];
  private writing = false;
  private closed = false;

  private constructor(
    private handle: FileHandle,
    readonly path: string,
    size: number,
    private readonly options: Required<JournalOptions>,
  ) {
    this.size = size;
  }

  /**
   * Open (or create) the journal at `path` and read its records. A file that
   * is not a journal of ours is QUEUE_CORRUPT, never overwritten.
   */
  static async open(path: string, options: JournalOptions = {}): Promise<JournalOpen> {
    const opts: Required<JournalOptions> = { maxFileBytes: 64 << 20, maxRecordBytes: 1 << 20, sync: true, ...options };
    // Read-write, not append: positional writes must land where we say (O_APPEND ignores the position on Linux).
    const handle = await open(path, RW_CREATE, 0o600).catch((e: unknown) => {
      throw new CoapfwError('IO_ERROR', `journal: cannot open ${path}: ${(e as Error).message}`, { cause: e, path });
    });
    try {
      const { size } = await handle.stat();
      if (size > opts.maxFileBytes) throw new CoapfwError('QUEUE_CORRUPT', `journal: ${path} is ${size} bytes, more than the ${opts.maxFileBytes} allowed`, { path });
      const bytes = new Uint8Array(size);
      await readFully(handle, bytes);
      const { records, end } = parseRecords(bytes, path, opts.maxRecordBytes);
      if (end < HEADER_BYTES) {
        // New, or a crash tore the header while creating it: start the file.
        await handle.truncate(0);
        await handle.write(header(), 0, HEADER_BYTES, 0);
        if (opts.sync) await handle.sync();
        return { journal: new RecordJournal(handle, path, HEADER_BYTES, opts), records: [], truncatedBytes: size };
      }
      if (end < size) {
        await handle.truncate(end);
        if (opts.sync) await handle.sync();
      }
      return { journal: new RecordJournal(handle, path, end, opts), records, truncatedBytes: size - end };
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
  }

  /** Bytes in the file now. */
  get bytes(): number {
    return this.size;
  }

  /** Append one record; resolves once it is on disk (with `sync`). */
  append(type: number, payload: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new CoapfwError('TRANSPORT_CLOSED', `journal: ${this.path} is closed`, { path: this.path }));
    if (payload.length > this.options.maxRecordBytes) {
      return Promise.reject(new CoapfwError('TOO_LARGE', `journal: record of ${payload.length} bytes exceeds ${this.options.maxRecordBytes}`, { path: this.path }));
    }
    return new Promise((done, fail) => {
      this.queue.push({ bytes: frame(type, payload), done, fail });
      if (!this.writing) void this.writeQueued();
    });
  }

  /**
   * Replace the whole file by `records` (compaction): a temporary file is
   * written and synced, renamed over the journal, the directory synced.
   */
  async rewrite(records: readonly JournalRecord[]): Promise<void> {
    await this.idle();
    const tmp = `${this.path}.tmp`;
    const parts = [header(), ...records.map((r) => frame(r.type, r.payload))];
    const out = await open(tmp, 'w', 0o600);
    let size = 0;
    try {
      for (const p of parts) {
        await out.write(p, 0, p.length, size);
        size += p.length;
      }
      if (this.options.sync) await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, this.path);
    if (this.options.sync) await syncDir(dirname(this.path));
    await this.handle.close();
    this.handle = await open(this.path, RW_CREATE, 0o600);
    this.size = size;
  }

  /** Finish pending appends and close the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.idle();
    this.closed = true;
    await this.handle.close();
  }

  /** Resolves when no append is being written. */
  private async idle(): Promise<void> {
    while (this.writing || this.queue.length > 0) await new Promise<void>((r) => setImmediate(r));
  }

  private async writeQueued(): Promise<void> {
    this.writing = true;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      const bytes = concatBytes(...batch.map((b) => b.bytes));
      try {
        await this.handle.write(bytes, 0, bytes.length, this.size);
        if (this.options.sync) await this.handle.datasync();
        this.size += bytes.length;
        for (const b of batch) b.done();
      } catch (e) {
        const err = new CoapfwError('IO_ERROR', `journal: cannot write ${this.path}: ${(e as Error).message}`, { cause: e, path: this.path });
        // The position is not advanced: the next append overwrites whatever part landed.
        await this.handle.truncate(this.size).catch(() => {}); // best effort; reopening cuts a torn tail anyway
        for (const b of batch) b.fail(err);
      }
    }
    this.writing = false;
  }
}

function header(): Uint8Array {
  const h = new Uint8Array(HEADER_BYTES);
  h.set(MAGIC, 0);
  new DataView(h.buffer).setUint32(4, VERSION);
  return h;
}

function frame(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(FRAME_BYTES + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 1 + payload.length);
  out[8] = type;
  out.set(payload, FRAME_BYTES);
  view.setUint32(4, crc32(out.subarray(8)));
  return out;
}

/** Records up to the first torn or damaged one, and where that one starts. */
function parseRecords(bytes: Uint8Array, path: string, maxRecord: number): { records: JournalRecord[]; end: number } {
  if (bytes.length < HEADER_BYTES || !MAGIC.every((b, i) => bytes[i] === b)) {
    // A torn header (a crash during creation) is only possible in a file shorter than one.
    if (bytes.length < HEADER_BYTES && MAGIC.subarray(0, bytes.length).every((b, i) => bytes[i] === b)) return { records: [], end: 0 };
    throw new CoapfwError('QUEUE_CORRUPT', `journal: ${path} is not a coapfw journal (bad header)`, { path });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const version = view.getUint32(4);
  if (version !== VERSION) throw new CoapfwError('QUEUE_CORRUPT', `journal: ${path} has format version ${version}, this coapfw reads ${VERSION}`, { path });
  const records: JournalRecord[] = [];
  let pos = HEADER_BYTES;
  while (pos + FRAME_BYTES <= bytes.length) {
    const len = view.getUint32(pos);
    if (len < 1 || len - 1 > maxRecord || pos + 8 + len > bytes.length) break;
    const body = bytes.subarray(pos + 8, pos + 8 + len);
    if (crc32(body) !== view.getUint32(pos + 4)) break;
    records.push({ type: body[0]!, payload: body.slice(1) });
    pos += 8 + len;
  }
  return { records, end: pos };
}

async function readFully(handle: FileHandle, into: Uint8Array): Promise<void> {
  for (let done = 0; done < into.length; ) {
    const { bytesRead } = await handle.read(into, done, into.length - done, done);
    if (bytesRead === 0) throw new CoapfwError('IO_ERROR', 'journal: the file shrank while being read');
    done += bytesRead;
  }
}

/** fsync a directory, so that a rename in it survives a power cut (POSIX leaves it to the caller). */
export async function syncDir(dir: string): Promise<void> {
  const h = await open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}
