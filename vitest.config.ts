import { defineConfig } from 'vitest/config';

/**
 * The suites in three tiers, each runnable alone (`npm run test:unit`, `test:e2e`, `test:system`);
 * `npm test` runs them all (docs/testing.md, "Tiers").
 * - unit: the domain, the platform, each service's component tests (real PGlite, PostgreSQL,
 *   Redis, NATS), the hosts' configuration, the deployment files, the API documents;
 * - e2e: the whole system in one process (embedded), and the gateway against real servers;
 * - system: real processes (cluster mode, a service alone, the compiled build, the migration job,
 *   npm start restarted), the chaos run, the benchmark's end-to-end run, and the browser.
 */
const SYSTEM = [
  'test/bench.e2e.test.ts',
  'test/chaos.e2e.test.ts',
  'test/cluster-launcher.e2e.test.ts',
  'test/cluster.e2e.test.ts',
  'test/compiled.e2e.test.ts',
  'test/lifecycle.cluster.e2e.test.ts',
  'test/migrate.e2e.test.ts',
  'test/replicas.e2e.test.ts',
  'test/restart.e2e.test.ts',
  'test/service-alone.e2e.test.ts',
  'test/tracing.cluster.e2e.test.ts',
  'test/web.e2e.test.ts',
  'test/web.lifecycle.e2e.test.ts',
  'test/web.scenarios.e2e.test.ts',
];

export default defineConfig({
  // Workspace packages export their TypeScript sources under the "source" condition.
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // PGlite instances are memory-hungry WASM; two workers suit this 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/test/**/*.test.ts', 'apps/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/**/*.e2e.test.ts', '**/node_modules/**'],
        },
      },
      { extends: true, test: { name: 'e2e', include: ['test/**/*.e2e.test.ts'], exclude: [...SYSTEM, '**/node_modules/**'] } },
      { extends: true, test: { name: 'system', include: SYSTEM } },
    ],
  },
});
