/**
 * An in-memory NOR flash with power-cut injection and wear accounting, the
 * chip that power-safety tests run on.
 *
 * Power cuts: `cutAfter(n)` lets `n` more mutating operations (writes and
 * erases) complete and interrupts the next one. The interrupted operation
 * leaves the chip torn, as real parts do:
 * - a torn write programs only part of the data (by default a random prefix
 *   plus one partially programmed byte; `tornWrite: 'scatter'` programs a
 *   random subset of the bytes instead), AND-ed into the erased cells;
 * - a torn erase fully erases the blocks before the interrupted one and
 *   leaves the interrupted block partially erased (random bytes set to 0xFF,
 *   the others with some bits raised).
 * The operation then throws `CoapfwError('POWER_CUT')` and the chip stays
 * dead (every later call throws `POWER_CUT`) until `powerOn()`, so a test can
 * restart the device on the same chip contents. Reads do not count as
 * operations: they cannot change what the chip holds, so a cut "during a
 * read" is the same as a cut just before the next write or erase.
 *
 * All randomness comes from the `random` option (a seeded PRNG by default),
 * so every failing run can be replayed.
 */
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
import { mulberry32 } from './prng.js';

/** Options of {@link MemoryFlash}. */
export interface MemoryFlashOptions {
  /** Total size in bytes. */
  size: number;
  /** Erase block size in bytes. Default 4096. */
  eraseBlockSize?: number;
  /** Program unit in bytes. Default 4. */
  writeAlignment?: number;
  /** Random source in [0, 1) for torn operations. Default: mulberry32(1). */
  random?: () => number;
  /** How a torn write lands: a prefix (default) or a scattered subset. */
  tornWrite?: 'prefix' | 'scatter';
  /** Initial contents (length `size`); default all 0xFF (a fresh chip). */
  contents?: Uint8Array;
  /**
   * Called before each mutating operation with its index (as `ops` counts
   * them), kind and range: tests use it to find where an operation sequence
   * touches an area (for example where a log ring turns a page).
   */
  onOperation?: (op: FlashOperation) => void;
}

/** A mutating operation, as {@link MemoryFlashOptions.onOperation} sees it. */
export interface FlashOperation {
  readonly index: number;
  readonly kind: 'write' | 'erase';
  readonly offset: number;
  readonly length: number;
}

/** How an interrupted operation lands. */
export interface CutOptions {
  /**
   * Exactly how many bytes, counted from the start of the interrupted
   * operation, are fully programmed (write) or erased (erase); the rest is
   * untouched. Default: chosen by the random source, with partial bytes.
   */
  tornBytes?: number;
}

/** Operation counters of a {@link MemoryFlash}. */
export interface FlashStats {
  reads: number;
  writes: number;
  erases: number;
  bytesRead: number;
  bytesWritten: number;
  bytesErased: number;
}

/** In-memory NOR flash; see the file comment for the fault model. */
export class MemoryFlash implements FlashBackend {
  readonly size: number;
  readonly eraseBlockSize: number;
  readonly writeAlignment: number;
  /** Erase count per erase block (wear). Partial erases count too. */
  readonly eraseCounts: Uint32Array;
  /** Counters since creation (completed and torn operations). */
  readonly stats: FlashStats = { reads: 0, writes: 0, erases: 0, bytesRead: 0, bytesWritten: 0, bytesErased: 0 };

  private readonly mem: Uint8Array;
  private readonly random: () => number;
  private readonly tornWrite: 'prefix' | 'scatter';
  private readonly onOperation: ((op: FlashOperation) => void) | undefined;
  private opCount = 0;
  private cutIndex: number | undefined;
  private cutOptions: CutOptions = {};
  private dead = false;

  constructor(options: MemoryFlashOptions) {
    const geometry: FlashGeometry = {
      size: options.size,
      eraseBlockSize: options.eraseBlockSize ?? 4096,
      writeAlignment: options.writeAlignment ?? 4,
    };
    checkGeometry(geometry, 'MemoryFlash');
    this.size = geometry.size;
    this.eraseBlockSize = geometry.eraseBlockSize;
    this.writeAlignment = geometry.writeAlignment;
    this.random = options.random ?? mulberry32(1);
    this.tornWrite = options.tornWrite ?? 'prefix';
    this.onOperation = options.onOperation;
    this.eraseCounts = new Uint32Array(this.size / this.eraseBlockSize);
    if (options.contents !== undefined) {
      if (options.contents.length !== this.size) {
        throw new CoapfwError('INVALID_ARGUMENT', `MemoryFlash: contents must be ${this.size} bytes, got ${options.contents.length}`);
      }
      this.mem = options.contents.slice();
    } else {
      this.mem = new Uint8Array(this.size).fill(ERASED);
    }
  }

  /** Mutating operations (writes and erases) started so far, the torn one included. */
  get ops(): number {
    return this.opCount;
  }

  /** False after a power cut, until `powerOn()`. */
  get powered(): boolean {
    return !this.dead;
  }

  /** Let `n` more writes/erases complete, then cut power during the next one. */
  cutAfter(n: number, options: CutOptions = {}): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new CoapfwError('INVALID_ARGUMENT', `MemoryFlash.cutAfter: expected integer >= 0, got ${n}`);
    }
    this.cutIndex = this.opCount + n;
    this.cutOptions = options;
  }

  /** Cut power during the operation whose index (see `ops`, counted from 0 since creation) is `opIndex`. */
  cutAt(opIndex: number, options: CutOptions = {}): void {
    if (!Number.isSafeInteger(opIndex) || opIndex < this.opCount) {
      throw new CoapfwError('INVALID_ARGUMENT', `MemoryFlash.cutAt: expected integer >= ${this.opCount} (ops so far), got ${opIndex}`);
    }
    this.cutAfter(opIndex - this.opCount, options);
  }

  /** Cancel a scheduled cut. */
  cancelCut(): void {
    this.cutIndex = undefined;
  }

  /** Restore power after a cut (contents are kept). */
  powerOn(): void {
    this.dead = false;
  }

  /** Same as `powerOn()`: the device restarts on the same chip. */
  reboot(): void {
    this.powerOn();
  }

  /** A copy of the whole chip. */
  snapshot(): Uint8Array {
    return this.mem.slice();
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    this.checkPower();
    checkRead(this, offset, length);
    this.stats.reads++;
    this.stats.bytesRead += length;
    return this.mem.slice(offset, offset + length);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    this.checkPower();
    checkWrite(this, offset, data);
    const bad = firstNotErased(this.mem.subarray(offset, offset + data.length));
    if (bad !== -1) {
      throw new CoapfwError('FLASH_NOT_ERASED', `flash write: byte ${offset + bad} is not erased`);
    }
    this.stats.writes++;
    this.stats.bytesWritten += data.length;
    if (this.takeCut('write', offset, data.length)) {
      this.tearWrite(offset, data);
      this.die('write', offset);
    }
    // NOR programming ANDs into the cells; the target is erased, so this is a copy.
    for (let i = 0; i < data.length; i++) this.mem[offset + i] &= data[i]!;
  }

  async erase(offset: number, length: number): Promise<void> {
    this.checkPower();
    checkErase(this, offset, length);
    this.stats.erases++;
    this.stats.bytesErased += length;
    if (this.takeCut('erase', offset, length)) {
      this.tearErase(offset, length);
      this.die('erase', offset);
    }
    this.mem.fill(ERASED, offset, offset + length);
    for (let b = offset / this.eraseBlockSize; b < (offset + length) / this.eraseBlockSize; b++) this.eraseCounts[b]!++;
  }

  private checkPower(): void {
    if (this.dead) throw new CoapfwError('POWER_CUT', 'flash: no power (call powerOn())');
  }

  /** Count one mutating operation; true when it is the one to interrupt. */
  private takeCut(kind: FlashOperation['kind'], offset: number, length: number): boolean {
    const index = this.opCount++;
    this.onOperation?.({ index, kind, offset, length });
    if (this.cutIndex !== undefined && index === this.cutIndex) {
      this.cutIndex = undefined;
      return true;
    }
    return false;
  }

  private die(op: string, offset: number): never {
    this.dead = true;
    throw new CoapfwError('POWER_CUT', `flash: power cut during ${op} at ${offset} (operation ${this.opCount - 1})`);
  }

  private randomByte(): number {
    return Math.floor(this.random() * 256) & 0xff;
  }

  private tearWrite(offset: number, data: Uint8Array): void {
    const forced = this.cutOptions.tornBytes;
    if (forced !== undefined) {
      const n = Math.min(Math.max(0, forced), data.length);
      for (let i = 0; i < n; i++) this.mem[offset + i] &= data[i]!;
      return;
    }
    if (this.tornWrite === 'scatter') {
      for (let i = 0; i < data.length; i++) {
        const r = this.random();
        if (r < 0.4) this.mem[offset + i] &= data[i]!;
        else if (r < 0.6) this.mem[offset + i] &= data[i]! | this.randomByte();
      }
      return;
    }
    const n = Math.floor(this.random() * (data.length + 1));
    for (let i = 0; i < n; i++) this.mem[offset + i] &= data[i]!;
    // The byte being programmed when power failed: only some of its 0-bits landed.
    if (n < data.length) this.mem[offset + n] &= data[n]! | this.randomByte();
  }

  private tearErase(offset: number, length: number): void {
    const ebs = this.eraseBlockSize;
    const forced = this.cutOptions.tornBytes;
    const done = forced !== undefined ? Math.min(Math.max(0, forced), length) : Math.floor(this.random() * (length / ebs)) * ebs;
    this.mem.fill(ERASED, offset, offset + done);
    const first = offset / ebs;
    const touched = Math.min(Math.ceil((done + (forced === undefined ? 1 : 0)) / ebs), length / ebs);
    for (let b = first; b < first + touched; b++) this.eraseCounts[b]!++;
    if (forced !== undefined) return;
    // The block being erased when power failed: some bytes fully erased, others with some bits raised.
    const start = offset + done;
    for (let i = start; i < start + ebs; i++) {
      const r = this.random();
      if (r < 0.5) this.mem[i] = ERASED;
      else if (r < 0.8) this.mem[i]! |= this.randomByte();
    }
  }
}
