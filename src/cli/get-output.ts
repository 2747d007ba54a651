/**
 * Where `coapfw get` writes, decided before anything is fetched:
 * - `-o -`: standard output (the progress bar and messages stay on stderr);
 * - `-o DIR` (an existing directory): DIR/<last path segment of the URI>, as
 *   `cp` and `scp` do with a directory;
 * - `-o FILE` or the default (the last path segment, in the current
 *   directory): a regular file, written through FILE.part and renamed at the
 *   end, resumable with --resume;
 * - an existing device or FIFO (`-o /dev/null`): written as a stream, never
 *   replaced by a rename.
 * A missing parent directory fails here, before the first request.
 */
import { createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileError, readFileBounded } from '../bounded-read.js';
import { fetchBlocks, type FetchOptions } from '../blockwise/fetch.js';
import { CoapfwError } from '../errors.js';
import type { CoapClient } from '../client/open.js';
import { UsageError } from './common.js';

/** A resolved output. */
export type GetOutput =
  | { readonly kind: 'file'; readonly path: string }
  | { readonly kind: 'stream'; readonly path: string; readonly stdout: boolean };

async function kindOf(path: string): Promise<'missing' | 'dir' | 'file' | 'other'> {
  try {
    const st = await stat(path);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw fileError(e, path);
  }
}

/**
 * The default file name: the URI's last path segment reduced to a plain file
 * name (a percent-encoded "/" or ".." in the URI must not choose where we write).
 */
function uriFileName(segments: readonly string[]): string | undefined {
  const last = segments.at(-1);
  const name = last === undefined ? undefined : basename(last.replaceAll('\\', '/'));
  return name === undefined || name === '' || name === '.' || name === '..' ? undefined : name;
}

/** Resolve `-o` (or its absence) for a URI with these path segments. */
export async function resolveOutput(option: string | undefined, segments: readonly string[]): Promise<GetOutput> {
  if (option === '-') return { kind: 'stream', path: '-', stdout: true };
  const name = uriFileName(segments);
  let path = option ?? name;
  if (path === undefined) throw new UsageError('the URI has no file name: give -o FILE (or -o - for standard output)');
  let kind = await kindOf(path);
  if (kind === 'dir') {
    if (name === undefined) throw new UsageError(`${path} is a directory and the URI has no file name: give -o DIR/FILE`);
    if (option === undefined) throw new CoapfwError('IO_ERROR', `${path}: is a directory; give -o FILE`, { path });
    path = join(path, name);
    kind = await kindOf(path);
    if (kind === 'dir') throw new CoapfwError('IO_ERROR', `${path}: is a directory; give -o FILE`, { path });
  }
  if (kind === 'other') return { kind: 'stream', path, stdout: false };
  const parent = dirname(path);
  if ((await kindOf(parent)) !== 'dir') throw new CoapfwError('IO_ERROR', `${parent}: no such directory (for ${path})`, { path: parent });
  return { kind: 'file', path };
}

/** Size of `path`, or -1 when it does not exist. */
export function sizeOf(path: string): Promise<number> {
  return stat(path).then((s) => s.size, () => -1);
}

/**
 * After a failed or interrupted download: an empty FILE.part (nothing
 * arrived, e.g. no server or a 4.04) is removed with its metadata; a part
 * holding data is kept for --resume. Returns the bytes kept.
 */
export async function tidyPart(file: string): Promise<number> {
  const part = `${file}.part`;
  const size = await sizeOf(part);
  if (size === 0) await Promise.all([rm(part, { force: true }), rm(`${part}.json`, { force: true })]);
  return Math.max(0, size);
}

/**
 * The block size (SZX) FILE.part was fetched with, when `--resume` will
 * continue it: its metadata names the same URI and an ETag (the format the
 * downloader writes next to the part).
 */
export async function partSzx(file: string, uri: string): Promise<number | undefined> {
  try {
    const text = new TextDecoder().decode(await readFileBounded(`${file}.part.json`, 64 * 1024, 'download metadata'));
    const meta = JSON.parse(text) as { uri?: unknown; etag?: unknown; szx?: unknown };
    if (meta.uri !== uri || typeof meta.etag !== 'string' || typeof meta.szx !== 'number' || (await sizeOf(`${file}.part`)) < 0) return undefined;
    return meta.szx;
  } catch {
    return undefined;
  }
}

/**
 * Fetch into a stream (`stdout`, or the device or FIFO `out.path`): no part
 * file, no resume, back-pressure honoured. Resolves with bytes and blocks.
 */
export async function fetchToStream(
  client: CoapClient,
  out: GetOutput & { kind: 'stream' },
  stdout: NodeJS.WritableStream,
  opts: Omit<FetchOptions, 'runtime' | 'options'>,
): Promise<{ bytes: number; blocks: number }> {
  const stream: NodeJS.WritableStream = out.stdout ? stdout : createWriteStream(out.path, { flags: 'a' });
  let failed: Error | undefined;
  const onError = (e: Error): void => void (failed = fileError(e, out.stdout ? 'standard output' : out.path) as Error);
  stream.on('error', onError);
  let bytes = 0;
  let blocks = 0;
  try {
    for await (const b of fetchBlocks(client.request, { ...opts, runtime: client.runtime, options: client.options })) {
      if (failed) throw failed;
      if (!stream.write(b.data)) await drained(stream);
      bytes += b.data.length;
      blocks++;
    }
    if (failed) throw failed;
    return { bytes, blocks };
  } finally {
    stream.off('error', onError);
    if (!out.stdout) (stream as ReturnType<typeof createWriteStream>).end();
  }
}

/** Resolves on 'drain' or 'error' (the error itself is caught by the stream's error listener). */
function drained(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
  });
}
