/**
 * Prints one plain closing line, "N passed, N failed, N skipped", after the
 * run, so logs and CI can read the result without parsing vitest's output.
 * A failed hook (beforeAll/afterAll) or module counts as a failure even when
 * vitest reports its tests as skipped, and so does every unhandled error: the
 * line must never say "0 failed" when the run failed.
 */
import type { Reporter, TestModule } from 'vitest/node';

type SerializedError = Parameters<NonNullable<Reporter['onTestRunEnd']>>[1][number];

export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    for (const m of testModules) {
      let failedTests = 0;
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failedTests++;
        else skipped++;
      }
      failed += failedTests;
      // A suite or module that failed on its own (a hook, an import) without a failed test.
      const suitesFailedAlone = [...m.children.allSuites()].filter((s) => s.state() === 'failed' && ![...s.children.allTests()].some((t) => t.result().state === 'failed')).length;
      if (failedTests === 0 && m.state() === 'failed') failed += Math.max(1, suitesFailedAlone);
      else failed += suitesFailedAlone;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
