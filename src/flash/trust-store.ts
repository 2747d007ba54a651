/**
 * The power-safe trust record: the device's whole trust state (anchors,
 * roles, trust version, revocation list sequence and revoked keys, owner
 * key, source URI; suit/trust-set.ts) in one flash area, replaced
 * atomically: after a power cut at any flash operation the device reads
 * either the old state or the new one, never a mix and never none.
 *
 * The area (erase-block aligned) is split in three:
 * ```
 * +---------------------------+  pointer log: 2 erase blocks, a RecordLog (record-log.ts) of kind 3
 * +---------------------------+  copy 0: ceil(maxStateBytes / eraseBlockSize) erase blocks
 * +---------------------------+  copy 1: as many
 * ```
 * A copy holds the encoded state (suit/trust-codec.ts, CBOR) padded with
 * 0xFF. The newest pointer record names the copy in use, the state's length
 * and its SHA-256. An update erases the other copy, programs the new state
 * into it, reads it back, and only then appends a pointer record naming it:
 * that one program operation is the commit. A cut before it leaves the old
 * pointer and the untouched old copy; a torn pointer record fails its CRC
 * and the previous one still wins (record-log.ts).
 *
 * Pointer record payload (big-endian, 40 bytes; 52 on flash with framing):
 * ```
 * offset size field
 *      0    1 format version (1)
 *      1    1 copy (0 or 1)
 *      2    2 reserved, 0
 *      4    4 length of the encoded state
 *      8   32 SHA-256 of the encoded state
 * ```
 *
 * Fail closed: "no pointer record" is a device never provisioned (it then
 * trusts nobody: every update is refused). A pointer whose copy does not
 * hash to its digest or does not decode, or a pointer of another format,
 * is TRUST_STORE_CORRUPT, never "empty": falling back to an older or a
 * built-in trust set would undo rotations and revocations.
 */
import { sha256 } from '@noble/hashes/sha2.js';
import { CoapfwError } from '../errors.js';
import { decodeTrustState, encodeTrustState } from '../suit/trust-codec.js';
import type { TrustLimits, TrustState } from '../suit/trust-set.js';
import { equalBytes as bytesEqual } from '@noble/curves/utils.js';
import { ERASED, alignUp, checkGeometry, type FlashBackend, type FlashGeometry } from './backend.js';
import type { FlashArea } from './layout.js';
import { RecordLog, type RecordLogStats } from './record-log.js';

/** Pointer log kind (record-log.ts; 1 is the journal, 2 the boot log). */
export const TRUST_POINTER_KIND = 3;
/** Format version of the pointer record. */
export const TRUST_POINTER_FORMAT = 1;
const POINTER_PAYLOAD_SIZE = 40;
/** Default largest encoded state: the most the default trust limits allow is 4,039 bytes. */
export const MAX_TRUST_STATE_BYTES = 4096;
const POINTER_BLOCKS = 2;

/** Options of {@link TrustStore}. */
export interface TrustStoreOptions {
  /** Largest encoded state the store holds; sets the copy size. Default 4096. */
  readonly maxStateBytes?: number;
  /** Bytes per program operation when writing a copy (rounded to the write alignment). Default 256, a NOR page. */
  readonly programChunk?: number;
  /** Limits the stored state is decoded under (suit/trust-set.ts). */
  readonly limits?: Partial<TrustLimits>;
}

/** What a store did since it was opened. */
export interface TrustStoreStats {
  /** States written (including one a power cut interrupted). */
  writes: number;
  /** Bytes programmed into copies. */
  bytesWritten: number;
  /** Erase blocks erased in copies. */
  blocksErased: number;
  /** The pointer log's own counters. */
  readonly pointer: Readonly<RecordLogStats>;
}

interface Pointer {
  copy: number;
  length: number;
  digest: Uint8Array;
}

function copyBlocks(geometry: FlashGeometry, options: TrustStoreOptions): number {
  const max = options.maxStateBytes ?? MAX_TRUST_STATE_BYTES;
  if (!Number.isSafeInteger(max) || max < 64 || max > 0xffffffff) {
    throw new CoapfwError('INVALID_ARGUMENT', `trust store: maxStateBytes must be an integer 64..2^32-1, got ${max}`);
  }
  return Math.ceil(max / geometry.eraseBlockSize);
}

function encodePointer(p: Pointer): Uint8Array {
  const out = new Uint8Array(POINTER_PAYLOAD_SIZE);
  const view = new DataView(out.buffer);
  out[0] = TRUST_POINTER_FORMAT;
  out[1] = p.copy;
  view.setUint32(4, p.length);
  out.set(p.digest, 8);
  return out;
}

function corrupt(msg: string, cause?: unknown): CoapfwError {
  return new CoapfwError('TRUST_STORE_CORRUPT', `trust store: ${msg}; trust updates are refused until the device is re-provisioned`, cause === undefined ? undefined : { cause });
}

/**
 * The device's trust state on flash.
 *
 * @example
 * const store = await TrustStore.open(flash, area);
 * const current = store.state();                      // undefined: not provisioned
 * const walk = walkTrustChain(current!, docs);
 * if (walk.applied.length > 0) await store.write(walk.state);
 */
export class TrustStore {
  readonly #stats: TrustStoreStats;
  private constructor(
    private readonly flash: FlashBackend,
    private readonly area: FlashArea,
    private readonly log: RecordLog,
    private readonly copySize: number,
    private readonly chunk: number,
    private readonly options: TrustStoreOptions,
    private current: { pointer: Pointer; state: TrustState } | undefined,
    private failure: CoapfwError | undefined,
  ) {
    this.#stats = { writes: 0, bytesWritten: 0, blocksErased: 0, pointer: log.stats };
  }

  /** Bytes of flash the store needs on a chip of this geometry (erase-block aligned). */
  static areaSize(geometry: FlashGeometry, options: TrustStoreOptions = {}): number {
    checkGeometry(geometry, 'trust store');
    return geometry.eraseBlockSize * (POINTER_BLOCKS + 2 * copyBlocks(geometry, options));
  }

  /** Open the store in `area`, reading the newest pointer and the copy it names. */
  static async open(flash: FlashBackend, area: FlashArea, options: TrustStoreOptions = {}): Promise<TrustStore> {
    const ebs = flash.eraseBlockSize;
    const need = TrustStore.areaSize(flash, options);
    if (area.offset % ebs !== 0 || area.size !== need || area.offset + area.size > flash.size) {
      throw new CoapfwError('INVALID_ARGUMENT', `trust store: the area must be ${need} bytes (${need / ebs} erase blocks), erase-block aligned, on the chip; got [${area.offset}, +${area.size})`);
    }
    const chunk = alignUp(Math.max(1, options.programChunk ?? 256), flash.writeAlignment);
    const log = await RecordLog.open(flash, { offset: area.offset, size: POINTER_BLOCKS * ebs }, { kind: TRUST_POINTER_KIND, payloadSize: POINTER_PAYLOAD_SIZE });
    const copySize = copyBlocks(flash, options) * ebs;
    const store = new TrustStore(flash, area, log, copySize, chunk, options, undefined, undefined);
    await store.load();
    return store;
  }

  /**
   * Provisioning: erase the whole area and write the first state. Not
   * power-safe by design (like `Journal.reset`): a cut leaves a device to
   * provision again, which reads as not provisioned.
   */
  static async provision(flash: FlashBackend, area: FlashArea, state: TrustState, options: TrustStoreOptions = {}): Promise<TrustStore> {
    TrustStore.areaSize(flash, options);
    if (area.offset % flash.eraseBlockSize !== 0 || area.size % flash.eraseBlockSize !== 0) {
      throw new CoapfwError('INVALID_ARGUMENT', 'trust store: the area must be erase-block aligned');
    }
    await flash.erase(area.offset, area.size);
    const store = await TrustStore.open(flash, area, options);
    await store.write(state);
    return store;
  }

  private copyOffset(copy: number): number {
    return this.area.offset + POINTER_BLOCKS * this.flash.eraseBlockSize + copy * this.copySize;
  }

  private async load(): Promise<void> {
    const rec = this.log.latest();
    if (rec === undefined) return;
    const p = rec.payload;
    const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
    const pointer: Pointer = { copy: p[1]!, length: view.getUint32(4), digest: p.slice(8, 40) };
    if (p[0] !== TRUST_POINTER_FORMAT || pointer.copy > 1 || view.getUint16(2) !== 0 || pointer.length === 0 || pointer.length > this.copySize) {
      this.failure = corrupt(`the newest pointer record is in a format this firmware cannot read (format ${p[0]}, copy ${pointer.copy}, length ${pointer.length})`);
      return;
    }
    const bytes = await this.flash.read(this.copyOffset(pointer.copy), pointer.length);
    if (!bytesEqual(sha256(bytes), pointer.digest)) {
      this.failure = corrupt(`copy ${pointer.copy} does not match its recorded SHA-256`);
      return;
    }
    try {
      this.current = { pointer, state: decodeTrustState(bytes, this.options.limits) };
    } catch (e) {
      this.failure = corrupt(`copy ${pointer.copy} holds a state this firmware cannot read (${(e as Error).message})`, e);
    }
  }

  /**
   * The stored state; undefined only when the device was never provisioned
   * (then it must trust nobody). Throws TRUST_STORE_CORRUPT when the stored
   * state cannot be read (see the file comment).
   */
  state(): TrustState | undefined {
    if (this.failure) throw this.failure;
    return this.current?.state;
  }

  /**
   * Replace the stored state atomically (see the file comment). The caller
   * verified `next` (applyTrustUpdate, applyRevocationList, ...). Throws
   * LIMIT_EXCEEDED when it encodes beyond `maxStateBytes`, IO_ERROR when the
   * copy does not read back as written (the old state stays).
   */
  async write(next: TrustState): Promise<void> {
    const bytes = encodeTrustState(next);
    if (bytes.length > this.copySize) {
      throw new CoapfwError('LIMIT_EXCEEDED', `trust store: the state encodes in ${bytes.length} bytes, a copy holds ${this.copySize}`);
    }
    // Never the copy the newest valid pointer names; after a corrupt read, not the named one either.
    const named = this.current?.pointer.copy ?? (this.log.latest()?.payload[1] === 0 ? 0 : 1);
    const target = 1 - named;
    const at = this.copyOffset(target);
    this.#stats.writes++;
    for (let off = 0; off < this.copySize; off += this.flash.eraseBlockSize) {
      this.#stats.blocksErased++;
      await this.flash.erase(at + off, this.flash.eraseBlockSize);
    }
    const padded = new Uint8Array(alignUp(bytes.length, this.flash.writeAlignment)).fill(ERASED);
    padded.set(bytes);
    for (let off = 0; off < padded.length; off += this.chunk) {
      const part = padded.subarray(off, Math.min(padded.length, off + this.chunk));
      this.#stats.bytesWritten += part.length;
      await this.flash.write(at + off, part);
    }
    const digest = sha256(bytes);
    if (!bytesEqual(sha256(await this.flash.read(at, bytes.length)), digest)) {
      throw new CoapfwError('IO_ERROR', `trust store: copy ${target} does not read back as written; the previous state stays`);
    }
    const pointer: Pointer = { copy: target, length: bytes.length, digest };
    await this.log.append(encodePointer(pointer));
    this.current = { pointer, state: decodeTrustState(bytes, this.options.limits) };
    this.failure = undefined;
  }

  /** Writes, bytes and erases since `open`. */
  get stats(): Readonly<TrustStoreStats> {
    return this.#stats;
  }
}
