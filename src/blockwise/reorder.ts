/**
 * A bounded reorder buffer: blocks of a body that arrive in any order
 * (Q-Block2, RFC 9177 §4.4: "the blocks may arrive in any order") go out to
 * a sequential writer (stdout, a FIFO, a hash) in body order.
 *
 * The buffer holds only blocks past a missing one, and at most `maxBlocks`
 * of them: the fetch must not ask further ahead than that (the Q-Block2
 * client's `maxAhead`), so a block that would exceed the bound means the
 * fetch and the buffer disagree, and fails with LIMIT_EXCEEDED rather than
 * growing without end. A body that ends with a hole (the fetch reported
 * completion, yet some bytes never arrived) fails `finish` with
 * BLOCK_OUT_OF_ORDER naming the first missing offset, rather than waiting
 * for bytes that will not come.
 */
import { CoapfwError } from '../errors.js';

/** Options of {@link ReorderBuffer}. */
export interface ReorderOptions {
  /** Most blocks held while waiting for a missing one (>= 1). */
  readonly maxBlocks: number;
  /** Writes the next bytes of the body, in order; awaited before the next write. */
  readonly write: (data: Uint8Array) => Promise<void> | void;
}

/** Blocks in, body order out. Not reentrant: `push` calls are chained by the buffer itself. */
export class ReorderBuffer {
  private readonly held = new Map<number, Uint8Array>();
  private nextOffset = 0;
  private heldBytes = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly o: ReorderOptions) {
    if (!Number.isInteger(o.maxBlocks) || o.maxBlocks < 1) throw new CoapfwError('INVALID_ARGUMENT', `reorder: maxBlocks must be an integer >= 1, got ${o.maxBlocks}`);
  }

  /** Bytes written out so far (the body's contiguous prefix). */
  get written(): number {
    return this.nextOffset;
  }

  /** Blocks waiting for a missing one. */
  get waiting(): number {
    return this.held.size;
  }

  /** Bytes waiting for a missing one. */
  get waitingBytes(): number {
    return this.heldBytes;
  }

  /**
   * Add the block at byte `offset`; resolves once every block now in order
   * is written. A block already written or already held is a duplicate and
   * ignored (RFC 9177 §4.4).
   */
  push(offset: number, data: Uint8Array): Promise<void> {
    if (!Number.isInteger(offset) || offset < 0) return Promise.reject(new CoapfwError('INVALID_ARGUMENT', `reorder: offset must be an integer >= 0, got ${offset}`));
    if (offset < this.nextOffset || this.held.has(offset)) return this.chain;
    if (offset > this.nextOffset && this.held.size >= this.o.maxBlocks) {
      return Promise.reject(
        new CoapfwError('LIMIT_EXCEEDED', `reorder: block at byte ${offset} arrived with ${this.held.size} blocks already waiting for byte ${this.nextOffset} (at most ${this.o.maxBlocks})`),
      );
    }
    this.held.set(offset, data);
    this.heldBytes += data.length;
    this.chain = this.chain.then(() => this.drain());
    return this.chain;
  }

  /** The body is `size` bytes: everything pushed must be written and nothing missing. */
  async finish(size: number): Promise<void> {
    await this.chain;
    if (this.nextOffset < size || this.held.size > 0) {
      const waiting = this.held.size > 0 ? `; ${this.held.size} later blocks are waiting` : '';
      throw new CoapfwError('BLOCK_OUT_OF_ORDER', `reorder: the body ended with bytes from ${this.nextOffset} missing (size ${size})${waiting}`);
    }
  }

  private async drain(): Promise<void> {
    for (let data = this.held.get(this.nextOffset); data !== undefined; data = this.held.get(this.nextOffset)) {
      this.held.delete(this.nextOffset);
      this.heldBytes -= data.length;
      await this.o.write(data);
      // An empty block (a zero-length body) moves nothing on: stop rather than loop.
      if (data.length === 0) break;
      this.nextOffset += data.length;
    }
  }
}
