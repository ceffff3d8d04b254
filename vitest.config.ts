import { defineConfig } from 'vitest/config';

// Two projects: "unit" needs no server; "integration" runs against the real
// servers, started once by test/harness/global-setup.ts. `npm test` runs both.
export default defineConfig({
  test: {
    // Two cores: two test files at a time; each has its own namespace and bucket.
    maxWorkers: 2,
    reporters: ['default', './test/harness/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          globalSetup: ['test/harness/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
