import { defineConfig } from 'vitest/config';

/**
 * Files that start node processes under load, time failovers or drive benchmarks: run one at a
 * time (2 shared cores), after the rest. Everything else runs three files at a time: most of a
 * unit file's wall time is module loading and waiting on sockets, not CPU.
 */
const ONE_AT_A_TIME = ['test/e2e/**/*.test.ts', 'test/bench/**/*.test.ts', 'test/deploy/production-install.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'parallel',
          include: ['test/**/*.test.ts'],
          exclude: ONE_AT_A_TIME,
          maxWorkers: 3,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'one-at-a-time',
          include: ONE_AT_A_TIME,
          maxWorkers: 1,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
