/**
 * Downloading to a file, resumably: the bytes so far go to `FILE.part`, the
 * resume state (URI, ETag, block size) to `FILE.part.json`; a finished
 * download is renamed into place, so `FILE` is never a half-written file.
 */
import { open, readFile, rename, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { downloadToSink, type DownloadOptions, type DownloadResult, type DownloadSink, type DownloadTarget, type ResumePoint, type ResumeState } from '../blockwise/download.js';
import { fileError } from '../bounded-read.js';
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
  private handle: FileHandle | undefined;

  constructor(readonly file: string) {
    this.part = `${file}.part`;
    this.metaFile = `${this.part}.json`;
  }

  async resumable(): Promise<ResumePoint | undefined> {
    const state = await readMeta(this.metaFile);
    if (state === undefined) return undefined;
    const length = await stat(this.part).then(
      (s) => s.size,
      () => -1,
    );
    return length < 0 ? undefined : { state, length };
  }

  async begin(offset: number): Promise<void> {
    await this.release();
    if (offset > 0) {
      await io(this.part, truncate(this.part, offset));
      this.handle = await io(this.part, open(this.part, 'r+'));
    } else {
      this.handle = await io(this.part, open(this.part, 'w'));
    }
  }

  async save(state: ResumeState): Promise<void> {
    const meta: PartMeta = { uri: state.key, etag: bytesToHex(state.etag), szx: state.szx };
    await io(this.metaFile, writeFile(this.metaFile, JSON.stringify(meta)));
  }

  async write(data: Uint8Array, offset: number): Promise<void> {
    if (this.handle === undefined) throw new CoapfwError('INVALID_ARGUMENT', 'file sink: write before begin', { path: this.part });
    await io(this.part, this.handle.write(data, 0, data.length, offset));
  }

  async finish(): Promise<void> {
    await this.release();
    await io(this.file, rename(this.part, this.file));
    await io(this.metaFile, rm(this.metaFile, { force: true }));
  }

  abort(): Promise<void> {
    return this.release();
  }

  private async release(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    if (h !== undefined) await io(this.part, h.close());
  }
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
