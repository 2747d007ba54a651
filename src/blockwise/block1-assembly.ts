/**
 * One Block1 body being assembled in memory (block1.ts): the bytes so far,
 * checked against retransmitted blocks, in a buffer grown by doubling.
 */
import { equalBytes } from '@noble/curves/utils.js';

/** One body being assembled: the bytes so far in a buffer that grows by doubling (up to the limit). */
export class Assembly {
  received = 0;
  private buf: Uint8Array;

  constructor(
    readonly peer: string,
    public touched: number,
    initialCapacity: number,
  ) {
    this.buf = new Uint8Array(initialCapacity);
  }

  get capacity(): number {
    return this.buf.length;
  }

  /** True when the bytes at `offset` are already here, exactly (a retransmitted block). */
  holds(offset: number, data: Uint8Array): boolean {
    return offset + data.length <= this.received && equalBytes(this.buf.subarray(offset, offset + data.length), data);
  }

  /** Append `data` (the caller checked the limit); returns how many bytes the buffer grew by. */
  append(data: Uint8Array, max: number): number {
    const need = this.received + data.length;
    let grown = 0;
    if (need > this.buf.length) {
      const next = new Uint8Array(Math.min(max, Math.max(need, this.buf.length * 2)));
      next.set(this.buf.subarray(0, this.received));
      grown = next.length - this.buf.length;
      this.buf = next;
    }
    this.buf.set(data, this.received);
    this.received = need;
    return grown;
  }

  /** The whole body, exactly its length. */
  body(): Uint8Array {
    return this.received === this.buf.length ? this.buf : this.buf.slice(0, this.received);
  }
}
