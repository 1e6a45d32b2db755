/**
 * Proves the package is browser-safe: bundling it for the browser platform succeeds with no Node
 * built-ins (a `node:` import or Buffer would break the SDK in browsers), and stays small.
 */

import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { expect, it } from 'vitest';

it('bundles for browsers without Node built-ins', async () => {
  const entry = fileURLToPath(new URL('./index.ts', import.meta.url));
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    minify: true,
    logLevel: 'silent',
  });
  expect(result.errors).toEqual([]);
  const code = result.outputFiles[0]!.text;
  expect(code).not.toMatch(/\bBuffer\b|from"node:|require\(/);
  // A guard against pulling in something heavy by accident, not a size target.
  expect(code.length).toBeLessThan(64 * 1024);
});
