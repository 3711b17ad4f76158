import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // uWebSockets.js is a native addon: each test file gets its own process, not a worker thread.
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The machines have 2 cores; Postgres and the servers under test need one.
    maxWorkers: 2,
  },
});
