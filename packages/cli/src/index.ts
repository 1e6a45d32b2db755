/**
 * `@flotilla/cli` as a library: run the `flotilla` command line in-process (tests, embedding) and
 * the exit codes it documents. The executable itself is `main.ts`.
 */

export type { CliContext, Output, StopSignal } from './context.js';
export { processContext } from './context.js';
export { type DevOptions, runDevCluster } from './dev.js';
export { EXIT, type ExitCode, exitCodeFor, exitCodeForErrorCode } from './exit-codes.js';
export { buildProgram, CLI_VERSION, runCli } from './program.js';
