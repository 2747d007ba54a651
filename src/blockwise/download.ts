/**
 * A resumable download into a {@link DownloadSink}: the sink keeps the bytes
 * so far and what a later run needs to continue (the resource's key, ETag and
 * block size). A resumed download continues at the next whole block when the
 * ETag still matches and starts over cleanly when it does not (RFC 7959 §2.4:
 * two versions of a representation are never stitched together).
 *
 * No I/O here: the file sink (`FILE.part` + `FILE.part.json`) lives in
 * client/file-sink.ts; a sink can as well be memory, stdout or a flash slot.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { blockSize, MAX_SZX } from '../codec/block.js';
import type { CoapOption } from '../codec/message.js';
import type { Requester } from '../core/request.js';
import type { Runtime } from '../core/runtime.js';
import { isCoapfwError } from '../errors.js';
import type { RetryPolicy } from '../messaging/retry.js';
import { fetchBlocks, type FetchProgress } from './fetch.js';

/** What a later run needs to continue a download. */
export interface ResumeState {
  /** Names the resource (its URI, say): a state saved for another key is never continued. */
  readonly key: string;
  /** The representation's ETag when the bytes so far were fetched (1..8 bytes, RFC 7252 §5.10.6). */
  readonly etag: Uint8Array;
  /** Block size exponent the bytes so far were fetched with (0..6). */
  readonly szx: number;
}

/** A saved {@link ResumeState} and how many bytes the sink still holds from that run. */
export interface ResumePoint {
  readonly state: ResumeState;
  readonly length: number;
}

/**
 * Where a download's bytes go. Calls come in this order per run: `begin`
 * once the first block has arrived, then `save` (when there is something new
 * to remember) and `write` for each block in order, then `finish` or, if the
 * run failed after `begin`, `abort`. Nothing is called on the sink before the
 * server has answered, so an unreachable server leaves no empty partial file.
 */
export interface DownloadSink {
  /** What an earlier interrupted run left, or undefined. Asked only with `resume`; omit for sinks that cannot resume. */
  resumable?(): Promise<ResumePoint | undefined>;
  /** Keep the first `offset` bytes and drop the rest (0: start empty). */
  begin(offset: number): Promise<void>;
  /** Remember `state` for a later run. Omit for sinks that cannot resume. */
  save?(state: ResumeState): Promise<void>;
  /** Write `data` at byte `offset`. */
  write(data: Uint8Array, offset: number): Promise<void>;
  /** Every byte is in: make the result final and forget the resume state. */
  finish(): Promise<void>;
  /** The run failed after `begin`: release what it holds, keeping the bytes for a later resume. */
  abort(error: unknown): Promise<void>;
}

/** The resource to fetch: a requester bound to the server, and the options naming it. `CoapClient` is one. */
export interface DownloadTarget {
  readonly request: Requester;
  readonly runtime: Runtime;
  /** Uri-Path and Uri-Query options naming the resource, without Block2. */
  readonly options: readonly CoapOption[];
}

/** Options of {@link downloadToSink}. */
export interface DownloadOptions {
  /** Continue what the sink holds from an earlier run, if anything. */
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
  /** True when a partial download was found but had to be discarded (ETag changed). */
  readonly restarted: boolean;
}

/**
 * Fetch `target` block by block into `sink`; `key` names the resource in the
 * saved resume state (use its URI).
 *
 * @example
 * const r = await downloadToSink(client, mySink, uri, { resume: true });
 */
export async function downloadToSink(target: DownloadTarget, sink: DownloadSink, key: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  let szx = options.szx ?? MAX_SZX;
  blockSize(szx); // validates at the boundary, before anything is fetched
  let start = 0;
  let etag: Uint8Array | undefined;
  const prior = options.resume && sink.resumable ? await sink.resumable() : undefined;
  if (prior !== undefined && usable(prior, key)) {
    szx = prior.state.szx;
    // Fetch the last block we have again: a download that is already complete
    // (killed before `finish`) then still ends with a real block, not a
    // request past the end.
    start = prior.length > 0 ? Math.floor((prior.length - 1) / blockSize(szx)) : 0;
    etag = prior.state.etag;
  }
  try {
    return await run(start, etag, false);
  } catch (e) {
    if (start > 0 && isCoapfwError(e, 'ETAG_MISMATCH')) return run(0, undefined, true);
    throw e;
  }

  async function run(startBlock: number, expected: Uint8Array | undefined, restarted: boolean): Promise<DownloadResult> {
    const resumedFrom = startBlock * blockSize(szx);
    let begun = false;
    let blocks = 0;
    let written = resumedFrom;
    let tag = expected;
    try {
      for await (const b of fetchBlocks(target.request, {
        runtime: target.runtime,
        options: target.options,
        startBlock,
        szx,
        etag: expected,
        maxSize: options.maxSize,
        retry: options.retry,
        signal: options.signal,
        onProgress: (p) => options.onProgress?.({ ...p, offset: written }),
      })) {
        if (!begun) {
          await sink.begin(resumedFrom);
          begun = true;
        }
        if (blocks === 0 && b.etag !== undefined && (tag === undefined || b.szx !== szx)) {
          tag = b.etag;
          await sink.save?.({ key, etag: b.etag, szx: b.szx });
        }
        szx = b.szx;
        await sink.write(b.data, b.offset);
        written = b.offset + b.data.length;
        blocks++;
      }
    } catch (e) {
      // The transfer's error is the one the caller must see; a sink that also
      // fails to release its handle has nothing to add to it.
      if (begun) await sink.abort(e).catch(() => undefined);
      throw e;
    }
    await sink.finish();
    return { bytes: written, resumedFrom, blocks, etag: tag && bytesToHex(tag), restarted };
  }
}

/** A saved state is continued only for the same key and with values a server could have sent. */
function usable(p: ResumePoint, key: string): boolean {
  const { state } = p;
  if (state.key !== key) return false;
  if (!Number.isInteger(state.szx) || state.szx < 0 || state.szx > MAX_SZX) return false;
  if (!(state.etag instanceof Uint8Array) || state.etag.length < 1 || state.etag.length > 8) return false;
  return Number.isInteger(p.length) && p.length >= 0;
}
