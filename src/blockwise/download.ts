/**
 * Download a representation to a file, resumable: the partial file
 * `FILE.part` keeps the bytes so far, `FILE.part.json` the URI, ETag and
 * block size. A resumed download continues at the next whole block when the
 * ETag still matches and starts over cleanly when it does not.
 */
import { open, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { blockSize, MAX_SZX } from '../codec/block.js';
import { isCoapfwError } from '../errors.js';
import type { RetryPolicy } from '../messaging/retry.js';
import type { CoapClient } from '../transport/client.js';
import { fetchBlocks, type FetchProgress } from './fetch.js';

/** Options of {@link downloadToFile}. */
export interface DownloadOptions {
  /** Continue a partial download if one is there. */
  readonly resume?: boolean;
  /** Block size exponent to ask for. Default 6 (1024 bytes). */
  readonly szx?: number;
  readonly maxSize?: number;
  readonly retry?: RetryPolicy;
  readonly signal?: AbortSignal;
  readonly onProgress?: (p: FetchProgress & { offset: number }) => void;
}

/** What a download did. */
export interface DownloadResult {
  readonly bytes: number;
  /** Bytes that were already there from an earlier, interrupted run. */
  readonly resumedFrom: number;
  readonly blocks: number;
  readonly etag: string | undefined;
  /** True when a partial file was found but had to be discarded (ETag changed). */
  readonly restarted: boolean;
}

interface PartMeta {
  uri: string;
  etag?: string;
  szx: number;
}

/** Fetch `client`'s URI into `file`. */
export async function downloadToFile(client: CoapClient, uriText: string, file: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  const part = `${file}.part`;
  const metaFile = `${part}.json`;
  let szx = options.szx ?? MAX_SZX;
  let start = 0;
  let etag: Uint8Array | undefined;
  if (options.resume) {
    const meta = await readMeta(metaFile);
    const have = await stat(part).then((s) => s.size, () => -1);
    if (meta && meta.uri === uriText && meta.etag !== undefined && have >= 0) {
      szx = meta.szx;
      // Fetch the last block we have again: a part that is already complete
      // (killed before the rename) then still ends with a real block, not a
      // request past the end.
      start = have > 0 ? Math.floor((have - 1) / blockSize(szx)) : 0;
      etag = hexToBytes(meta.etag);
    }
  }
  try {
    return await run(start, etag, false);
  } catch (e) {
    if (start > 0 && isCoapfwError(e, 'ETAG_MISMATCH')) return run(0, undefined, true);
    throw e;
  }

  async function run(startBlock: number, expected: Uint8Array | undefined, restarted: boolean): Promise<DownloadResult> {
    const resumedFrom = startBlock * blockSize(szx);
    if (startBlock > 0) await truncate(part, resumedFrom);
    const fh = await open(part, startBlock > 0 ? 'r+' : 'w');
    let blocks = 0;
    let written = resumedFrom;
    let tag = expected;
    try {
      for await (const b of fetchBlocks(client.request, {
        runtime: client.runtime,
        options: client.options,
        startBlock,
        szx,
        etag: expected,
        maxSize: options.maxSize,
        retry: options.retry,
        signal: options.signal,
        onProgress: (p) => options.onProgress?.({ ...p, offset: written }),
      })) {
        if (blocks === 0 && b.etag !== undefined && (tag === undefined || b.szx !== szx)) {
          tag = b.etag;
          await writeFile(metaFile, JSON.stringify({ uri: uriText, etag: bytesToHex(b.etag), szx: b.szx } satisfies PartMeta));
        }
        szx = b.szx;
        await fh.write(b.data, 0, b.data.length, b.offset);
        written = b.offset + b.data.length;
        blocks++;
      }
    } finally {
      await fh.close();
    }
    await rename(part, file);
    await rm(metaFile, { force: true });
    return { bytes: written, resumedFrom, blocks, etag: tag && bytesToHex(tag), restarted };
  }
}

async function readMeta(path: string): Promise<PartMeta | undefined> {
  try {
    const m = JSON.parse(await readFile(path, 'utf8')) as Partial<PartMeta>;
    if (typeof m.uri !== 'string' || typeof m.szx !== 'number' || m.szx < 0 || m.szx > MAX_SZX) return undefined;
    if (m.etag !== undefined && !/^(?:[0-9a-f]{2}){1,8}$/.test(m.etag)) return undefined;
    return { uri: m.uri, etag: m.etag, szx: m.szx };
  } catch {
    return undefined;
  }
}
