/**
 * The `flotilla` command tree: builds a fresh commander program around a context and runs it,
 * turning whatever happens (success, a typed error, a usage mistake, `--help`) into an exit code.
 * Nothing here calls `process.exit`: `main.ts` does, so tests can run commands in-process.
 */

import { Command, CommanderError } from 'commander';
import { registerBenchCommand } from './commands/bench.js';
import { registerConsumeCommand } from './commands/consume.js';
import { registerDevCommand } from './commands/dev.js';
import { registerPublishCommand } from './commands/publish.js';
import { registerQueueCommands } from './commands/queue.js';
import { registerServerCommand } from './commands/server.js';
import { registerStatusCommand } from './commands/status.js';
import type { CliContext } from './context.js';
import { describeError, EXIT, EXIT_CODES_HELP, exitCodeFor } from './exit-codes.js';

/** The version printed by `flotilla --version`. */
export const CLI_VERSION = '0.1.0';

/** What a command module gets: the context, and `run` to wrap an action that returns an exit code. */
export interface CommandEnv {
  ctx: CliContext;
  run<A extends unknown[]>(action: (...args: A) => Promise<number>): (...args: A) => Promise<void>;
}

const ROOT_HELP = `
Examples:
  $ flotilla dev                                  # a local 3-node cluster on ports 7401-7403
  $ flotilla status
  $ flotilla queue create emails --max-deliveries 5 --dead-letter-queue emails.dlq
  $ flotilla publish emails 'hello'
  $ flotilla consume emails --count 1
  $ flotilla bench --messages 100000

Client commands reach the cluster at --servers, else FLOTILLA_SERVERS, else the flotilla dev nodes
(ws://127.0.0.1:7401,7402,7403); the token comes from --token or FLOTILLA_TOKEN.

${EXIT_CODES_HELP}
`;

/** Builds the whole program; `onExitCode` receives what the action that ran returned. */
export function buildProgram(ctx: CliContext, onExitCode: (code: number) => void): Command {
  const program = new Command('flotilla')
    .description(
      'Flotilla: a replicated message queue broker. Run a node, manage queues, publish and consume.',
    )
    .version(CLI_VERSION, '-V, --version')
    .configureOutput({
      writeOut: (text) => ctx.stdout.write(text),
      writeErr: (text) => ctx.stderr.write(text),
      outputError: (text, write) => write(text),
    })
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', ROOT_HELP);
  const env: CommandEnv = {
    ctx,
    run:
      (action) =>
      async (...args) => {
        onExitCode(await action(...args));
      },
  };
  registerServerCommand(program, env);
  registerDevCommand(program, env);
  registerStatusCommand(program, env);
  registerQueueCommands(program, env);
  registerPublishCommand(program, env);
  registerConsumeCommand(program, env);
  registerBenchCommand(program, env);
  return program;
}

/** Runs the command line `argv` (without `node` and the script) and resolves with the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(ctx, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander printed the problem (or the help) already; help and --version exit 0.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    ctx.stderr.write(`flotilla: ${describeError(error)}\n`);
    return exitCodeFor(error);
  }
}
