/**
 * Fault injection for simulated devices on a real process: a FlashBackend
 * wrapper that counts writes and erases and, at a chosen operation, lands
 * part of it and then calls `crash` (the CLI passes a SIGKILL of its own
 * process), so a power cut can be placed anywhere in an update, install,
 * swap or confirm of a FileFlash device.
 */
import { CoapfwError } from '../errors.js';
import { alignDown, type FlashBackend } from '../flash/backend.js';

/** Counts mutating operations; crashes at operation number `crashAt` (0-based), if given. */
export class CrashingFlash implements FlashBackend {
  /** Writes and erases done through this wrapper. */
  ops = 0;

  constructor(
    private readonly inner: FlashBackend,
    private readonly crashAt: number | undefined,
    private readonly crash: () => never,
  ) {
    if (crashAt !== undefined && (!Number.isSafeInteger(crashAt) || crashAt < 0)) {
      throw new CoapfwError('INVALID_ARGUMENT', `crash: operation index must be an integer >= 0, got ${crashAt}`);
    }
  }

  get size(): number {
    return this.inner.size;
  }
  get eraseBlockSize(): number {
    return this.inner.eraseBlockSize;
  }
  get writeAlignment(): number {
    return this.inner.writeAlignment;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return this.inner.read(offset, length);
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    if (this.ops++ === this.crashAt) {
      // A torn write: the first half (whole program units) lands, then power goes.
      const torn = alignDown(Math.floor(data.length / 2), this.inner.writeAlignment);
      if (torn > 0) await this.inner.write(offset, data.subarray(0, torn));
      this.crash();
    }
    await this.inner.write(offset, data);
  }

  async erase(offset: number, length: number): Promise<void> {
    if (this.ops++ === this.crashAt) {
      // A torn multi-block erase: the first block is erased, then power goes.
      if (length > this.inner.eraseBlockSize) await this.inner.erase(offset, this.inner.eraseBlockSize);
      this.crash();
    }
    await this.inner.erase(offset, length);
  }
}
