#!/usr/bin/env node
/**
 * The `flotilla` executable: runs the command line against the real process and exits with the
 * command's exit code once stdout has been flushed (so a piped `--json` is never cut short).
 */

import { processContext } from './context.js';
import { runCli } from './program.js';

// The reader went away (`flotilla consume q --json | head -1`): nobody is left to print for.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await runCli(process.argv.slice(2), processContext());
process.stdout.write('', () => process.exit(code));
