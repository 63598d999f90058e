import { defineConfig } from 'vitest/config';

/**
 * Files that start several node processes under load, time failovers, drive a browser or run
 * benchmarks: one at a time (2 shared cores), after the rest. Everything else — the single-node
 * e2e files included — runs three files at a time: most of their wall time is module loading and
 * waiting on sockets, not CPU.
 */
const ONE_AT_A_TIME = [
  'test/bench/**/*.test.ts',
  'test/deploy/production-install.test.ts',
  'test/e2e/admin-console.e2e.test.ts',
  'test/e2e/cluster.e2e.test.ts',
  'test/e2e/command-handoff.e2e.test.ts',
  'test/e2e/durability.e2e.test.ts',
  'test/e2e/events-everywhere.e2e.test.ts',
  'test/e2e/failover.e2e.test.ts',
  'test/e2e/fuzz-hub.e2e.test.ts',
  'test/e2e/kill-during-resize.e2e.test.ts',
  'test/e2e/limits-everywhere.e2e.test.ts',
  'test/e2e/peer-security.e2e.test.ts',
  'test/e2e/redis-cluster.e2e.test.ts',
  'test/e2e/redis-sentinel.e2e.test.ts',
  'test/e2e/timers.e2e.test.ts',
  'test/e2e/tracing.e2e.test.ts',
];

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
