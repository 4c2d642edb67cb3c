import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The instance and e2e suites start real Nginx and JVMs on fixed loopback ports per suite;
    // two cores cannot run several of them at once without starving the health checks.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
