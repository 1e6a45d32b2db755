#!/usr/bin/env node
// The `flotilla` command as npm links it. This file is committed (the build output is not) so that
// `npm ci` on a fresh clone creates `node_modules/.bin/flotilla` before anything is built; it runs the
// compiled entry point, or says how to build it.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('flotilla: not built yet: run `npm run build` at the repository root first\n');
  process.exit(1);
}
await import(main.href);
