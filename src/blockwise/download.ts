/**
 * A resumable download into a {@link DownloadSink}: the sink keeps the bytes
 * so far and what a later run needs to continue (the resource's key, ETag and
 * block size, and which blocks it holds). A resumed download fetches only the
 * blocks it lacks when the ETag still matches, and starts over cleanly when it
 * does not (RFC 7959 §2.4: two versions of a representation are never
 * stitched together).
 *
 * The body comes with Q-Block2 (RFC 9177) when the server does it, in any
 * order; the sink is told each block's number, so a sink that records them
 * (client/file-sink.ts: a byte per block, written after the block's data)
 * resumes after a kill with only the blocks that were in flight lost. A sink
 * that does not resumes from the length it holds, the Block2 way.
 *
 * No I/O here: the file sink (`FILE.part` + `FILE.part.json` +
 * `FILE.part.map`) lives in client/; a sink can as well be memory, stdout or
 * a flash slot.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { blockSize, MAX_SZX } from '../codec/block.js';
import { CoapfwError, isCoapfwError } from '../errors.js';
import type { RetryPolicy } from '../messaging/retry.js';
import { BlockBitmap } from './bitmap.js';
import { fetchBody, type BodyResult, type BodyTarget, type FetchBodyOptions } from './fetch-body.js';
import type { FetchedBlock, FetchProgress } from './fetch.js';

/** What a later run needs to continue a download. */
export interface ResumeState {
  /** Names the resource (its URI, say): a state saved for another key is never continued. */
  readonly key: string;
  /** The representation's ETag when the bytes so far were fetched (1..8 bytes, RFC 7252 §5.10.6). */
  readonly etag: Uint8Array;
  /** Block size exponent the bytes so far were fetched with (0..6). */
  readonly szx: number;
}

/** A saved {@link ResumeState} and what the sink still holds from that run. */
export interface ResumePoint {
  readonly state: ResumeState;
  /** Bytes held from offset 0 on (a sink without a block record). */
  readonly length: number;
  /** The blocks held (numbered at `state.szx`), when the sink records them: then `length` is not used. */
  readonly blocks?: BlockBitmap;
}

/**
 * Where a download's bytes go. Calls per run: `begin` once the first block
 * has arrived, then `save` (when there is something new to remember) and
 * `write` for each block, in arrival order (not the order of the body with
 * Q-Block2; writes may overlap), then `finish` or, if the run failed after
 * `begin`, `abort`. Nothing is called on the sink before the server has
 * answered, so an unreachable server leaves no empty partial file.
 */
export interface DownloadSink {
  /** What an earlier interrupted run left, or undefined. Asked only with `resume`; omit for sinks that cannot resume. */
  resumable?(): Promise<ResumePoint | undefined>;
  /** Keep the first `offset` bytes and drop the rest (0: start empty); `keep`: keep everything held, blocks included. */
  begin(offset: number, keep?: boolean): Promise<void>;
  /** Remember `state` for a later run. Omit for sinks that cannot resume. */
  save?(state: ResumeState): Promise<void>;
  /**
   * Write `data` at byte `offset`; it is block `block` (at the saved block size), to be recorded once written.
   * Nothing returned: taken at once (held for a later write, which `finish` or `abort` completes).
   */
  write(data: Uint8Array, offset: number, block?: number): Promise<void> | void;
  /** Every byte is in: make the result final and forget the resume state. */
  finish(): Promise<void>;
  /** The run failed after `begin`: release what it holds, keeping the bytes for a later resume. */
  abort(error: unknown): Promise<void>;
}

/** The resource to fetch: a requester bound to the server, and the options naming it. `CoapClient` is one. */
export type DownloadTarget = BodyTarget;

/** Options of {@link downloadToSink}. */
export interface DownloadOptions {
  /** Continue what the sink holds from an earlier run, if anything. */
  readonly resume?: boolean;
  /** Block size exponent to ask for. Default 6 (1024 bytes). */
  readonly szx?: number;
  readonly maxSize?: number;
  readonly retry?: RetryPolicy;
  readonly signal?: AbortSignal;
  /** Use Q-Block2 when the server does it (and the target can open a stream). Default true. */
  readonly qblock2?: boolean;
  /** Block2 requests in flight (the endpoint's NSTART must allow them). Default 1. */
  readonly window?: number;
  /** Q-Block2 details (window limits, RFC 9177 parameters). */
  readonly tuning?: Pick<FetchBodyOptions, 'maxAhead' | 'congestion' | 'qblockParams'>;
  /** After each block; `offset` is the bytes held so far (resumed ones included). */
  readonly onProgress?: (p: FetchProgress & { offset: number }) => void;
  /** Told once which way the body is fetched. */
  readonly onMode?: (mode: 'qblock2' | 'block2') => void;
}

/** What a download did. */
export interface DownloadResult {
  readonly bytes: number;
  /** Bytes that were already there from an earlier, interrupted run. */
  readonly resumedFrom: number;
  readonly blocks: number;
  readonly etag: string | undefined;
  /** True when a partial download was found but had to be discarded (ETag or block size changed). */
  readonly restarted: boolean;
  /** 'qblock2' (RFC 9177) or 'block2' (RFC 7959). */
  readonly mode: 'qblock2' | 'block2';
  /** Q-Block2 counters (see `BodyResult.stats`). */
  readonly stats?: BodyResult['stats'];
}

/** A resumed part that cannot be continued (another ETag, another block size): start over. */
const STALE = Symbol('stale part');

/**
 * Fetch `target` into `sink`; `key` names the resource in the saved resume
 * state (use its URI).
 *
 * @example
 * const r = await downloadToSink(client, mySink, uri, { resume: true });
 */
export async function downloadToSink(target: DownloadTarget, sink: DownloadSink, key: string, options: DownloadOptions = {}): Promise<DownloadResult> {
  let szx = options.szx ?? MAX_SZX;
  blockSize(szx); // validates at the boundary, before anything is fetched
  const prior = options.resume && sink.resumable ? await sink.resumable() : undefined;
  let from: Held | undefined;
  if (prior !== undefined && usable(prior, key)) {
    szx = prior.state.szx;
    from = heldOf(prior);
  }
  try {
    return await run(target, sink, key, options, szx, from, false);
  } catch (e) {
    if (from !== undefined && (isCoapfwError(e, 'ETAG_MISMATCH') || (e as { [STALE]?: boolean })[STALE] === true)) {
      return run(target, sink, key, options, options.szx ?? MAX_SZX, undefined, true);
    }
    throw e;
  }
}

/** What a resumed run starts from. */
interface Held {
  readonly etag: Uint8Array;
  readonly blocks: BlockBitmap;
  /** Bytes kept: the whole part (a block record) or the contiguous prefix before the first block fetched again. */
  readonly keepOffset: number;
  readonly keepAll: boolean;
  readonly bytes: number;
}

/**
 * A sink with a block record continues with the blocks it lacks; one
 * without fetches its last block again, so that a download already complete
 * (killed before `finish`) still ends with a real block, not a request past
 * the end.
 */
function heldOf(p: ResumePoint): Held {
  const bs = blockSize(p.state.szx);
  if (p.blocks !== undefined) {
    return { etag: p.state.etag, blocks: p.blocks, keepOffset: 0, keepAll: true, bytes: p.blocks.count * bs };
  }
  const start = p.length > 0 ? Math.floor((p.length - 1) / bs) : 0;
  const blocks = new BlockBitmap(start + 1);
  for (let n = 0; n < start; n++) blocks.set(n);
  return { etag: p.state.etag, blocks, keepOffset: start * bs, keepAll: false, bytes: start * bs };
}

async function run(target: DownloadTarget, sink: DownloadSink, key: string, options: DownloadOptions, szx: number, held: Held | undefined, restarted: boolean): Promise<DownloadResult> {
  let begun: Promise<void> | undefined;
  let saved: Promise<void> | undefined;
  let tag = held?.etag;
  // Once the sink has begun and saved its state, a block goes straight to it:
  // no promise chain of our own per block (the sink may answer at once).
  let ready = false;
  const onBlock = (b: FetchedBlock): Promise<void> | void => (ready ? sink.write(b.data, b.offset, b.num) : first(b));
  const first = async (b: FetchedBlock): Promise<void> => {
    if (begun === undefined) {
      if (held !== undefined && b.szx !== szx) throw Object.assign(new CoapfwError('BLOCK_MISMATCH', `download: the server now sends ${blockSize(b.szx)}-byte blocks, the part has ${blockSize(szx)}`), { [STALE]: true });
      begun = sink.begin(held?.keepOffset ?? 0, held?.keepAll ?? false);
      if (b.etag !== undefined && held === undefined) {
        tag = b.etag;
        saved = begun.then(() => sink.save?.({ key, etag: b.etag!, szx: b.szx }));
      }
    }
    await begun;
    await saved;
    ready = true;
    await sink.write(b.data, b.offset, b.num);
  };
  try {
    const r = await fetchBody(target, {
      szx,
      held: held?.blocks,
      etag: held?.etag,
      maxSize: options.maxSize,
      retry: options.retry,
      signal: options.signal,
      qblock2: options.qblock2,
      window: options.window,
      ...options.tuning,
      onBlock,
      onMode: options.onMode,
      // Told before the block is written: count it from what the fetch received, not from the sink.
      // No callback, no per-block progress object; one of a fixed shape, not a spread, when there is.
      onProgress: progress(options.onProgress, held?.bytes ?? 0),
    });
    if (begun === undefined) begun = sink.begin(held?.keepOffset ?? 0, held?.keepAll ?? false); // everything was already held
    await begun;
    await saved;
    await sink.finish();
    // A held last block may be short: what was held is at most the body.
    const resumedFrom = Math.min(r.size, held?.bytes ?? 0);
    return { bytes: r.size, resumedFrom, blocks: r.blocks, etag: tag && bytesToHex(tag), restarted, mode: r.mode, ...(r.stats ? { stats: r.stats } : {}) };
  } catch (e) {
    // The transfer's error is the one the caller must see; a sink that also
    // fails to release its handle has nothing to add to it.
    if (begun !== undefined) await begun.then(() => sink.abort(e)).catch(() => undefined);
    throw e;
  }
}

function progress(on: DownloadOptions['onProgress'], heldBytes: number): ((p: FetchProgress) => void) | undefined {
  if (on === undefined) return undefined;
  return (p) => on({ received: p.received, total: p.total, block: p.block, retries: p.retries, offset: Math.min(p.total ?? Infinity, heldBytes + p.received) });
}

/** A saved state is continued only for the same key and with values a server could have sent. */
function usable(p: ResumePoint, key: string): boolean {
  const { state } = p;
  if (state.key !== key) return false;
  if (!Number.isInteger(state.szx) || state.szx < 0 || state.szx > MAX_SZX) return false;
  if (!(state.etag instanceof Uint8Array) || state.etag.length < 1 || state.etag.length > 8) return false;
  return p.blocks !== undefined || (Number.isInteger(p.length) && p.length >= 0);
}
