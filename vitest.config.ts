import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'interop/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Network tests bind loopback ports; two cores, so keep the pool small.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
