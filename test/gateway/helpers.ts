/** Shared pieces of the gateway tests: images, requests, a gated upstream for fills. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { FetchedBlock } from '../../src/blockwise/fetch.js';
import { decodeBlock, encodeBlock } from '../../src/codec/block.js';
import type { CoapMessage, CoapOption } from '../../src/codec/message.js';
import { Code, MessageType, OptionNumber } from '../../src/codec/numbers.js';
import { decodeUint, getOption } from '../../src/codec/options.js';
import type { ResponseSpec } from '../../src/messaging/endpoint.js';
import { mulberry32 } from '../../src/core/prng.js';
import { CoapfwError } from '../../src/errors.js';
import type { BlockFetcher } from '../../src/gateway/fill.js';

export function image(n: number, seed: number): Uint8Array {
  const r = mulberry32(seed);
  return new Uint8Array(n).map(() => Math.floor(r() * 256));
}

export const hexOf = (b: Uint8Array): string => bytesToHex(sha256(b));

export async function tempDir(name: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `coapfw-gw-${name}-`));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

let mid = 1;
/** A GET for block `num` at `szx` (no Block2 when num is undefined). */
export function blockGet(num: number | undefined, szx = 6, extra: CoapOption[] = []): CoapMessage {
  const options: CoapOption[] = [...extra];
  if (num !== undefined) options.push({ number: OptionNumber.BLOCK2, value: encodeBlock({ num, more: false, szx }) });
  return { type: MessageType.CON, code: Code.GET, messageId: mid++ & 0xffff, token: Uint8Array.of(1, 2), options, payload: new Uint8Array(0) };
}

export function maxAgeOf(r: ResponseSpec): number | undefined {
  const o = r.options?.find((x) => x.number === OptionNumber.MAX_AGE);
  return o === undefined ? undefined : decodeUint(o.value);
}

export function block2Of(r: ResponseSpec): { num: number; more: boolean; szx: number } | undefined {
  const o = r.options?.find((x) => x.number === OptionNumber.BLOCK2);
  return o === undefined ? undefined : decodeBlock(o.value);
}

export function optionOf(m: CoapMessage, n: number): Uint8Array | undefined {
  return getOption(m, n);
}

/**
 * An upstream for fills that hands out blocks only as the test releases them,
 * counting every block it sent. `bytes` may differ from what the address names
 * (a hostile upstream).
 */
export class GatedUpstream {
  sent: number[] = [];
  private allowed = 0;
  private wake: Array<() => void> = [];
  failAt: number | undefined;
  etagAt: number | undefined;

  constructor(
    readonly bytes: Uint8Array,
    readonly blockSize = 1024,
  ) {}

  get blocks(): number {
    return Math.ceil(this.bytes.length / this.blockSize);
  }

  /** Let `n` more blocks go. */
  release(n = Infinity): void {
    this.allowed += n;
    for (const w of this.wake.splice(0)) w();
  }

  readonly fetch: BlockFetcher = async (from, onBlock) => {
    const bs = this.blockSize;
    for (let off = from.startOffset; off < this.bytes.length; off += bs) {
      const num = off / bs;
      while (this.allowed <= num) await new Promise<void>((r) => this.wake.push(r));
      if (this.failAt === num) {
        this.failAt = undefined;
        throw new CoapfwError('TIMEOUT', `upstream: block ${num} timed out`);
      }
      this.sent.push(num);
      // What fetchBlocks does when the ETag changes mid-transfer (RFC 7959 §2.4).
      if (this.etagAt !== undefined && num >= this.etagAt) throw new CoapfwError('ETAG_MISMATCH', 'upstream: ETag changed');
      const etag = Uint8Array.of(1, 1);
      const b: FetchedBlock = { num, szx: Math.log2(bs) - 4, offset: off, data: this.bytes.subarray(off, off + bs), more: off + bs < this.bytes.length, etag, total: this.bytes.length };
      await onBlock(b);
    }
  };
}

/** Wait until `cond` holds (polling the event loop), at most `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
