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
import { fetchBody, type FetchBodyOptions } from '../blockwise/fetch-body.js';
import { ReorderBuffer } from '../blockwise/reorder.js';
import { FileSink } from '../client/file-sink.js';
import { blockSize } from '../codec/block.js';
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
  if (size === 0) await Promise.all([rm(part, { force: true }), rm(`${part}.json`, { force: true }), rm(`${part}.map`, { force: true })]);
  if (size <= 0) return 0;
  // Q-Block2 writes blocks where they belong, so the part's length is not what it holds: its block map says.
  const point = await new FileSink(file).resumable();
  return point?.blocks === undefined ? size : Math.min(size, point.blocks.count * blockSize(point.state.szx));
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
 * Q-Block2 into a stream: blocks asked for at most this far past the lowest
 * missing one, and no new ones while this many wait to be written (512 KiB
 * at 1 KiB blocks each way).
 */
const STREAM_AHEAD = 512;
/** Congestion window ceiling (messaging/congestion.ts `maxWindow` default): the blocks in flight when the gate closes. */
const MAX_IN_FLIGHT = 512;

/**
 * Fetch into a stream (`stdout`, or the device or FIFO `out.path`): no part
 * file, no resume, back-pressure honoured. Q-Block2 blocks arrive in any
 * order; they go out in body order through a {@link ReorderBuffer}, whose
 * bound holds because the fetch asks for nothing {@link STREAM_AHEAD} or more
 * past the lowest missing block nor while that many wait for the stream.
 * Resolves with bytes, blocks and the way the body came.
 */
export async function fetchToStream(
  client: CoapClient,
  out: GetOutput & { kind: 'stream' },
  stdout: NodeJS.WritableStream,
  opts: Omit<FetchBodyOptions, 'onBlock' | 'held' | 'maxAhead'>,
): Promise<{ bytes: number; blocks: number; mode: 'qblock2' | 'block2' }> {
  const stream: NodeJS.WritableStream = out.stdout ? stdout : createWriteStream(out.path, { flags: 'a' });
  let failed: Error | undefined;
  const onError = (e: Error): void => void (failed = fileError(e, out.stdout ? 'standard output' : out.path) as Error);
  stream.on('error', onError);
  const buffer = new ReorderBuffer({
    // Ahead of the hole, waiting for the stream, and what was in flight when the gate closed.
    maxBlocks: 2 * STREAM_AHEAD + MAX_IN_FLIGHT,
    write: async (data) => {
      if (failed) throw failed;
      if (!stream.write(data)) await drained(stream);
      if (failed) throw failed;
    },
  });
  try {
    const r = await fetchBody(client, { ...opts, maxAhead: STREAM_AHEAD, onBlock: (b) => buffer.push(b.offset, b.data) });
    await buffer.finish(r.size);
    return { bytes: buffer.written, blocks: r.blocks, mode: r.mode };
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
