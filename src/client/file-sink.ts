/**
 * Downloading to a file, resumably: the bytes so far go to `FILE.part`, the
 * resume state (URI, ETag, block size) to `FILE.part.json`, and which blocks
 * are in `FILE.part` to `FILE.part.map` (one byte per block, set once the
 * block's bytes are written: blocks arrive in any order with Q-Block2, and
 * a run killed at any moment is resumed with only the blocks that were
 * being written fetched again). A finished download is renamed into place,
 * so `FILE` is never a half-written file.
 *
 * Writes are batched: blocks that continue one another are held in memory
 * (at most `batchBytes`, 64 KiB by default) and go to the part in one
 * positional write, then to the map in one more. Two writes per block cost
 * more CPU than the rest of the client's work on a fast link; a run killed
 * with a batch held has it unrecorded in the map, so a resume fetches those
 * blocks again, as it does for any block that was being written.
 */
import { open, readFile, rename, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { bytesToHex, concatBytes, hexToBytes } from '@noble/hashes/utils.js';
import { BlockBitmap, MAX_BLOCKS } from '../blockwise/bitmap.js';
import { downloadToSink, type DownloadOptions, type DownloadResult, type DownloadSink, type DownloadTarget, type ResumePoint, type ResumeState } from '../blockwise/download.js';
import { fileError, readFileBounded } from '../bounded-read.js';
import { blockSize } from '../codec/block.js';
import { CoapfwError } from '../errors.js';

/** The resume record as stored in `FILE.part.json`. */
interface PartMeta {
  uri: string;
  etag: string;
  szx: number;
}

/** Options of {@link FileSink}. */
export interface FileSinkOptions {
  /** Bytes of consecutive blocks held before one write to the part (0: write each block at once). Default 64 KiB. */
  readonly batchBytes?: number;
}

/** Consecutive blocks not yet written: `chunks` from byte `offset`, blocks `first` .. `first + blocks - 1`. */
interface Batch {
  offset: number;
  end: number;
  first: number;
  blocks: number;
  chunks: Uint8Array[];
}

const DEFAULT_BATCH_BYTES = 64 * 1024;

/** A {@link DownloadSink} writing `file` through `file.part` and `file.part.json`. */
export class FileSink implements DownloadSink {
  readonly part: string;
  readonly metaFile: string;
  readonly mapFile: string;
  private handle: FileHandle | undefined;
  private map: FileHandle | undefined;
  /** Block size exponent of the part, once known (from its metadata or the first save). */
  private szx: number | undefined;
  private readonly batchBytes: number;
  private batch: Batch | undefined;
  /** The batches on their way to the file, one after the other; rejects with the first failure. */
  private flushing: Promise<void> = DONE;

  constructor(
    readonly file: string,
    options: FileSinkOptions = {},
  ) {
    this.part = `${file}.part`;
    this.metaFile = `${this.part}.json`;
    this.mapFile = `${this.part}.map`;
    const batch = options.batchBytes ?? DEFAULT_BATCH_BYTES;
    if (!Number.isInteger(batch) || batch < 0) throw new CoapfwError('INVALID_ARGUMENT', `file sink: batchBytes must be an integer >= 0, got ${batch}`);
    this.batchBytes = batch;
  }

  async resumable(): Promise<ResumePoint | undefined> {
    const state = await readMeta(this.metaFile);
    if (state === undefined) return undefined;
    const length = await stat(this.part).then(
      (s) => s.size,
      () => -1,
    );
    if (length < 0) return undefined;
    this.szx = state.szx;
    const blocks = await readMap(this.mapFile);
    return blocks === undefined ? { state, length } : { state, length, blocks };
  }

  async begin(offset: number, keep = false): Promise<void> {
    await this.release();
    if (keep) {
      this.handle = await io(this.part, open(this.part, 'r+'));
      this.map = await openMap(this.mapFile, false);
      return;
    }
    if (offset > 0) {
      await io(this.part, truncate(this.part, offset));
      this.handle = await io(this.part, open(this.part, 'r+'));
    } else {
      this.handle = await io(this.part, open(this.part, 'w'));
    }
    this.map = await openMap(this.mapFile, true);
    // The bytes kept are whole blocks held: record them too.
    const kept = this.szx === undefined ? 0 : Math.floor(offset / blockSize(this.szx));
    if (kept > 0) await io(this.mapFile, this.map.write(new Uint8Array(kept).fill(1), 0, kept, 0));
  }

  async save(state: ResumeState): Promise<void> {
    const meta: PartMeta = { uri: state.key, etag: bytesToHex(state.etag), szx: state.szx };
    this.szx = state.szx;
    await io(this.metaFile, writeFile(this.metaFile, JSON.stringify(meta)));
  }

  /**
   * Hold `data` with the blocks it continues, or write what is held first.
   * Nothing returned when `data` is held (no promise per block); else a
   * promise that settles once the full batch is written, failing with the
   * write's error.
   */
  write(data: Uint8Array, offset: number, block?: number): Promise<void> | undefined {
    if (this.handle === undefined) return Promise.reject(new CoapfwError('INVALID_ARGUMENT', 'file sink: write before begin', { path: this.part }));
    const b = this.batch;
    let flushed: Promise<void> | undefined;
    if (b !== undefined && offset === b.end && block !== undefined && block === b.first + b.blocks) {
      b.chunks.push(data);
      b.end += data.length;
      b.blocks++;
    } else {
      // Out of sequence (Q-Block2, a resend): what is held goes first; its failure is reported with this block.
      if (b !== undefined) flushed = this.flush();
      this.batch = { offset, end: offset + data.length, first: block ?? -1, blocks: block === undefined ? 0 : 1, chunks: [data] };
    }
    return this.batch!.end - this.batch!.offset >= this.batchBytes ? this.flush() : flushed;
  }

  /** Write the held batch (after the ones before it); settles when it and every earlier one are written. */
  private flush(): Promise<void> {
    const b = this.batch;
    this.batch = undefined;
    if (b === undefined) return this.flushing;
    const handle = this.handle!;
    const map = this.map;
    const next = this.flushing.then(async () => {
      await io(this.part, writeAt(handle, b.chunks, b.offset, b.end - b.offset));
      // Only after the bytes: the map never claims a block the part does not hold.
      const n = b.first < 0 ? 0 : Math.min(b.blocks, MAX_BLOCKS - b.first);
      if (map !== undefined && n > 0) await io(this.mapFile, map.write(n === 1 ? ONE : new Uint8Array(n).fill(1), 0, n, b.first));
    });
    // A batch written because the next block did not continue it has no caller waiting: its failure
    // is kept here for the next flush, finish or abort to report, not an unhandled rejection meanwhile.
    next.catch(() => undefined);
    this.flushing = next;
    return next;
  }

  async finish(): Promise<void> {
    await this.flush();
    await this.release();
    await io(this.file, rename(this.part, this.file));
    await io(this.metaFile, rm(this.metaFile, { force: true }));
    await io(this.mapFile, rm(this.mapFile, { force: true }));
  }

  /** What arrived is kept for a resume: the held batch is written, then the files are closed. */
  async abort(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.release();
    }
  }

  private async release(): Promise<void> {
    this.batch = undefined;
    this.flushing = DONE;
    const h = this.handle;
    const m = this.map;
    this.handle = this.map = undefined;
    if (h !== undefined) await io(this.part, h.close());
    if (m !== undefined) await io(this.mapFile, m.close());
  }
}

const ONE = Uint8Array.of(1);
const DONE: Promise<void> = Promise.resolve();

/** Write `chunks` (`total` bytes) at `offset`: one write, or one writev for several; the rest again after a short write. */
async function writeAt(h: FileHandle, chunks: Uint8Array[], offset: number, total: number): Promise<void> {
  let done = (chunks.length === 1 ? await h.write(chunks[0]!, 0, total, offset) : await h.writev(chunks, offset)).bytesWritten;
  if (done >= total) return;
  const all = concatBytes(...chunks);
  while (done < total) {
    const n = (await h.write(all, done, total - done, offset + done)).bytesWritten;
    if (n <= 0) throw new CoapfwError('IO_ERROR', `file sink: a write made no progress at offset ${offset + done}`);
    done += n;
  }
}

/** The map of a part (one byte per block, non-zero: held), or undefined when there is none or it cannot be read. */
async function readMap(path: string): Promise<BlockBitmap | undefined> {
  let bytes: Uint8Array;
  try {
    bytes = await readFileBounded(path, MAX_BLOCKS, 'download block map');
  } catch {
    return undefined; // no map: a part written in order (or by an older version), resumed by its length
  }
  const map = new BlockBitmap(Math.max(1, bytes.length));
  for (let n = 0; n < bytes.length; n++) if (bytes[n] !== 0) map.set(n);
  return bytes.length === 0 ? undefined : map;
}

/** Open the map for positional writes: emptied (`fresh`) or kept as it is. */
async function openMap(path: string, fresh: boolean): Promise<FileHandle> {
  if (!fresh) await io(path, open(path, 'a').then((h) => h.close())); // exists afterwards, contents untouched
  return io(path, open(path, fresh ? 'w' : 'r+'));
}

/**
 * Fetch `client`'s resource into `file` (see {@link downloadToSink}); `uri`
 * names it in the resume record, so a part left by another URI is not
 * continued.
 *
 * @example
 * const client = await openClient(uri);
 * try { await downloadToFile(client, uri, 'fw.bin', { resume: true }); } finally { await client.close(); }
 */
export function downloadToFile(client: DownloadTarget, uri: string, file: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  return downloadToSink(client, new FileSink(file), uri, options);
}

async function readMeta(path: string): Promise<ResumeState | undefined> {
  let m: Partial<PartMeta>;
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as Partial<PartMeta>;
  } catch {
    return undefined; // no record, or a torn one: nothing to resume, start over
  }
  if (typeof m.uri !== 'string' || typeof m.szx !== 'number') return undefined;
  if (typeof m.etag !== 'string' || !/^(?:[0-9a-f]{2}){1,8}$/.test(m.etag)) return undefined;
  return { key: m.uri, etag: hexToBytes(m.etag), szx: m.szx };
}

/** File-system failures become IO_ERROR naming the file (`fw.bin.part: no space left on device`). */
async function io<T>(path: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw fileError(e, path);
  }
}
