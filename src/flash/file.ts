/**
 * A flash chip kept in a file, with the same NOR semantics as MemoryFlash
 * (erase to 0xFF by aligned blocks, program only erased bytes). A device
 * process using it can be killed at any moment and started again: a write
 * is one positioned write into the file (continued after a short write),
 * and an erase of n blocks is n such writes of 0xFF, one per block in
 * order. So the file holds exactly the operations that completed, plus at
 * worst a torn last write or an erase cut between (or inside) its blocks,
 * which the journal and boot records are built to survive.
 *
 * One process at a time: `open` takes an exclusive lock on the file
 * (file-lock.ts) for the life of the handle, so a second device process on
 * the same chip fails at once with `FLASH_BUSY` naming the first, instead of
 * interleaving its writes with it (which corrupts the journal and boot log).
 * A lock left by a killed process is taken over by the next `open`.
 */
import { constants } from 'node:fs';
import { open, realpath, rename, type FileHandle } from 'node:fs/promises';
import { CoapfwError } from '../errors.js';
import {
  ERASED,
  checkErase,
  checkGeometry,
  checkRead,
  checkWrite,
  firstNotErased,
  type FlashBackend,
  type FlashGeometry,
} from './backend.js';
import { FileLock } from './file-lock.js';

/**
 * A new chip appears whole or not at all: filled with 0xFF under a temporary
 * name, synced, then renamed over the empty file `open` created (the caller
 * holds its lock). A process killed half-way leaves the empty file, which the
 * next `open` fills again, never a short file no geometry matches.
 */
async function createBlank(path: string, g: FlashGeometry): Promise<FileHandle> {
  const real = await realpath(path);
  const tmp = `${real}.init`;
  const out = await open(tmp, 'w', 0o644);
  try {
    const blank = new Uint8Array(Math.max(g.eraseBlockSize, 64 * 1024)).fill(ERASED);
    for (let off = 0; off < g.size; off += blank.length) await out.write(blank, 0, Math.min(blank.length, g.size - off), off);
    await out.sync();
  } finally {
    await out.close();
  }
  await rename(tmp, real);
  return open(real, constants.O_RDWR);
}

/** Options of {@link FileFlash.open}. */
export interface FileFlashOptions {
  /** Total size in bytes. */
  size: number;
  /** Erase block size in bytes. Default 4096. */
  eraseBlockSize?: number;
  /** Program unit in bytes. Default 4. */
  writeAlignment?: number;
  /** fsync after every write and erase (survives an OS crash, not only a process kill). Default false. */
  sync?: boolean;
}

/** A flash chip backed by a file. Create with {@link FileFlash.open}; call `close()` when done. */
export class FileFlash implements FlashBackend {
  private constructor(
    private readonly fh: FileHandle,
    readonly size: number,
    readonly eraseBlockSize: number,
    readonly writeAlignment: number,
    private readonly sync: boolean,
    private readonly lock: FileLock,
  ) {}

  /**
   * Open (or create, filled with 0xFF like a fresh chip) the file at `path`.
   * An existing file must have exactly `size` bytes. Throws `FLASH_BUSY` when
   * another process (or another open handle of this one) has it open.
   */
  static async open(path: string, options: FileFlashOptions): Promise<FileFlash> {
    const g: FlashGeometry = {
      size: options.size,
      eraseBlockSize: options.eraseBlockSize ?? 4096,
      writeAlignment: options.writeAlignment ?? 4,
    };
    checkGeometry(g, 'FileFlash');
    let fh: FileHandle;
    try {
      fh = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    } catch (e) {
      throw new CoapfwError('IO_ERROR', `FileFlash: cannot open ${path}`, { cause: e });
    }
    let lock: FileLock;
    try {
      // Before anything is written, the blank fill of a new file included.
      lock = await FileLock.acquire(path);
    } catch (e) {
      await fh.close();
      throw e;
    }
    try {
      const { size } = await fh.stat();
      if (size === 0) {
        await fh.close();
        fh = await createBlank(path, g);
      } else if (size !== g.size) {
        throw new CoapfwError('INVALID_ARGUMENT', `FileFlash: ${path} has ${size} bytes, expected ${g.size}`);
      }
    } catch (e) {
      await fh.close();
      await lock.release();
      if (e instanceof CoapfwError) throw e;
      throw new CoapfwError('IO_ERROR', `FileFlash: cannot initialise ${path}`, { cause: e });
    }
    return new FileFlash(fh, g.size, g.eraseBlockSize, g.writeAlignment, options.sync ?? false, lock);
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    checkRead(this, offset, length);
    return this.readRaw(offset, length);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    checkWrite(this, offset, data);
    const current = await this.readRaw(offset, data.length);
    const bad = firstNotErased(current);
    if (bad !== -1) throw new CoapfwError('FLASH_NOT_ERASED', `flash write: byte ${offset + bad} is not erased`);
    await this.writeRaw(offset, data);
  }

  async erase(offset: number, length: number): Promise<void> {
    checkErase(this, offset, length);
    const blank = new Uint8Array(this.eraseBlockSize).fill(ERASED);
    for (let off = offset; off < offset + length; off += blank.length) await this.writeRaw(off, blank);
  }

  /** Close the file and release its lock. The object is unusable afterwards. */
  async close(): Promise<void> {
    try {
      await this.fh.close();
    } finally {
      await this.lock.release();
    }
  }

  private async readRaw(offset: number, length: number): Promise<Uint8Array> {
    const buf = new Uint8Array(length);
    try {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new Error('unexpected end of file');
        done += bytesRead;
      }
    } catch (e) {
      throw new CoapfwError('IO_ERROR', `flash read at ${offset} failed`, { cause: e });
    }
    return buf;
  }

  private async writeRaw(offset: number, data: Uint8Array): Promise<void> {
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
      }
      if (this.sync) await this.fh.sync();
    } catch (e) {
      throw new CoapfwError('IO_ERROR', `flash write at ${offset} failed`, { cause: e });
    }
  }
}
