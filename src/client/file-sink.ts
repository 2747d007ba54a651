/**
 * Downloading to a file, resumably: the bytes so far go to `FILE.part`, the
 * resume state (URI, ETag, block size) to `FILE.part.json`, and which blocks
 * are in `FILE.part` to `FILE.part.map` (one byte per block, set once the
 * block's bytes are written: blocks arrive in any order with Q-Block2, and
 * a run killed at any moment is resumed with only the blocks that were
 * being written fetched again). A finished download is renamed into place,
 * so `FILE` is never a half-written file.
 */
import { open, readFile, rename, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
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

/** A {@link DownloadSink} writing `file` through `file.part` and `file.part.json`. */
export class FileSink implements DownloadSink {
  readonly part: string;
  readonly metaFile: string;
  readonly mapFile: string;
  private handle: FileHandle | undefined;
  private map: FileHandle | undefined;
  /** Block size exponent of the part, once known (from its metadata or the first save). */
  private szx: number | undefined;

  constructor(readonly file: string) {
    this.part = `${file}.part`;
    this.metaFile = `${this.part}.json`;
    this.mapFile = `${this.part}.map`;
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

  async write(data: Uint8Array, offset: number, block?: number): Promise<void> {
    if (this.handle === undefined) throw new CoapfwError('INVALID_ARGUMENT', 'file sink: write before begin', { path: this.part });
    await io(this.part, this.handle.write(data, 0, data.length, offset));
    // Only after the bytes: the map never claims a block the part does not hold.
    if (block !== undefined && this.map !== undefined && block < MAX_BLOCKS) await io(this.mapFile, this.map.write(ONE, 0, 1, block));
  }

  async finish(): Promise<void> {
    await this.release();
    await io(this.file, rename(this.part, this.file));
    await io(this.metaFile, rm(this.metaFile, { force: true }));
    await io(this.mapFile, rm(this.mapFile, { force: true }));
  }

  abort(): Promise<void> {
    return this.release();
  }

  private async release(): Promise<void> {
    const h = this.handle;
    const m = this.map;
    this.handle = this.map = undefined;
    if (h !== undefined) await io(this.part, h.close());
    if (m !== undefined) await io(this.mapFile, m.close());
  }
}

const ONE = Uint8Array.of(1);

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
