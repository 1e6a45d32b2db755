import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

export default defineConfig({
  resolve: {
    // Tests run against sources; real-process tests run the built CLI from dist/.
    alias: {
      '@flotilla/shared': src('shared'),
      '@flotilla/node': src('node'),
      '@flotilla/client': src('client'),
    },
  },
  test: {
    include: [
      'packages/*/src/**/*.test.ts',
      'test/**/*.test.ts',
      'bench/**/*.test.ts',
      'examples/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Real-process cluster tests must not run many clusters at once on a 2-core machine.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
