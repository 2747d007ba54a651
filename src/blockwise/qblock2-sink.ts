/**
 * The Q-Block2 client's view of its block sink: how many blocks handed to
 * `onBlock` have not been written yet (back-pressure for the pacer), and one
 * promise that settles once every write so far has, failing with the first
 * failure (the outcome waits for it).
 */

/** The writes of the blocks of one body, in the order they were handed on. */
export class SinkChain {
  private chain: Promise<void> = Promise.resolve();
  private pending = 0;

  /** Blocks handed on whose write has not settled yet. */
  get unsunk(): number {
    return this.pending;
  }

  /** Settles after every write tracked so far; rejects when one of them failed. */
  get settled(): Promise<void> {
    return this.chain;
  }

  /** Follow one block's write: `onSunk` once it succeeds, `onFailed` at once when it fails. */
  track(sink: Promise<void>, onSunk: () => void, onFailed: (e: Error) => void): void {
    this.pending++;
    const settled = sink.then(
      () => {
        this.pending--;
        onSunk();
      },
      (e: unknown) => {
        this.pending--;
        onFailed(e as Error);
        throw e;
      },
    );
    // Once the chain has failed it never runs its callback again, so a later
    // failing write would reject unobserved (an unhandled rejection ends the
    // process): its failure is told through onFailed, the chain keeps the first.
    settled.catch(() => undefined);
    this.chain = this.chain.then(() => settled);
  }
}
