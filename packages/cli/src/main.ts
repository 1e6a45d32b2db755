#!/usr/bin/env node
/**
 * The `flotilla` executable: runs the command line against the real process and exits with the
 * command's exit code once stdout has been flushed (so a piped `--json` is never cut short).
 */

import { processContext } from './context.js';
import { runCli } from './program.js';

const code = await runCli(process.argv.slice(2), processContext());
process.stdout.write('', () => process.exit(code));
