/**
 * Helpers of the interop tests: the generic process and fixture helpers of
 * `bench/procs.ts`, plus the CI rule for missing binaries.
 */
import { describe, it } from 'vitest';

export * from '../bench/procs.js';

/**
 * `describe` for tests that need external binaries: runs them when `missing`
 * is undefined; otherwise, under CI (the `CI` environment variable set) a
 * single failing test says what is missing, and locally the block is skipped
 * with the reason in its name.
 */
export function describeWithBinaries(name: string, missing: string | undefined, body: () => void): void {
  if (missing === undefined) {
    describe(name, body);
  } else if (process.env.CI) {
    describe(name, () => {
      it('has the binaries it needs (CI must not skip interop)', () => {
        throw new Error(`interop cannot run under CI: ${missing}`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${missing}]`, body);
  }
}

