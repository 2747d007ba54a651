/**
 * Reading a whole input file with a size bound, and file-system errors as
 * one-line messages that name the file. A key, a manifest or a PSK table is
 * small: reading `/dev/zero`, a FIFO or a multi-gigabyte file by mistake must
 * fail at the bound, not grow the process until the machine swaps.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { concatBytes } from '@noble/hashes/utils.js';
import { CoapfwError } from './errors.js';

const REASONS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  EEXIST: 'already exists',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EMFILE: 'too many open files',
  EBUSY: 'resource busy',
  EPIPE: 'closed by the reader (broken pipe)',
};

/**
 * A file-system error as a CoapfwError whose message names `path`
 * (`update.json: no such file or directory`); Node's own messages for some
 * errors (EISDIR on read) do not. Anything that is not an errno error is
 * returned unchanged.
 */
export function fileError(e: unknown, path: string): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string' || e instanceof CoapfwError) return e;
  const reason = REASONS[code] ?? (e as Error).message;
  return new CoapfwError('IO_ERROR', `${path}: ${reason}`, { cause: e, path });
}

/**
 * Read all of `path`, refusing (TOO_LARGE) as soon as it holds more than
 * `maxBytes`: a regular file by its size before anything is read, anything
 * else (a device, a FIFO, a /proc file that reports size 0) by counting what
 * it yields. A directory is refused by name. `what` labels the messages
 * ("key file", "envelope").
 */
export async function readFileBounded(path: string, maxBytes: number, what = 'file'): Promise<Uint8Array> {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new CoapfwError('INVALID_ARGUMENT', `read: maxBytes must be an integer >= 0, got ${maxBytes}`);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    throw fileError(e, path);
  }
  const a = /^[aeiou]/i.test(what) ? `an ${what}` : `a ${what}`;
  const tooLarge = (): CoapfwError => new CoapfwError('TOO_LARGE', `${path}: larger than ${maxBytes} bytes, the limit for ${a}`, { path });
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new CoapfwError('IO_ERROR', `${path}: is a directory, expected ${a}`, { path });
    if (st.isFile() && st.size > maxBytes) throw tooLarge();
    const chunks: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      // Ask for one byte past the bound, so a source exactly at the bound is read whole and one byte more is refused.
      const buf = new Uint8Array(Math.min(64 * 1024, maxBytes + 1 - total));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw tooLarge();
      chunks.push(buf.subarray(0, bytesRead));
    }
    return chunks.length === 1 ? chunks[0]! : concatBytes(...chunks);
  } catch (e) {
    throw fileError(e, path);
  } finally {
    await fh.close();
  }
}
