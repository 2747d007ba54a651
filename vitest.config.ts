import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Vite strips types from .ts and .mts only; src/ has CommonJS TypeScript too (.cts: bin.cts, load-secure.cts).
  oxc: { include: /\.([cm]?ts|[jt]sx)$/ },
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
