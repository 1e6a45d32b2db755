/**
 * `flotilla dev`: the command around `runDevCluster` (src/dev.ts): parses its options and passes
 * anything after `--` to every node as extra `flotilla server` flags.
 */

import type { Command } from 'commander';
import { checkDevOptions, type DevOptions } from '../dev.js';
import { UsageError } from '../exit-codes.js';
import { optionalInteger } from '../parse.js';
import type { CommandEnv } from '../program.js';

export interface DevFlags {
  nodes?: string;
  basePort?: string;
  host?: string;
  dataDir?: string;
}

export const DEV_DEFAULTS = { nodes: 3, basePort: 7401, host: '127.0.0.1', dataDir: '.flotilla' } as const;

/** The dev cluster's options from the flags (without output and signal wiring). */
export function devOptionsFromFlags(
  flags: DevFlags,
  serverArgs: readonly string[],
): Omit<DevOptions, 'out' | 'onStopSignal'> {
  const options = {
    nodes: optionalInteger(flags.nodes, '--nodes', { min: 1, max: 9 }) ?? DEV_DEFAULTS.nodes,
    basePort: optionalInteger(flags.basePort, '--base-port', { min: 1, max: 65535 }) ?? DEV_DEFAULTS.basePort,
    host: flags.host ?? DEV_DEFAULTS.host,
    dataDir: flags.dataDir ?? DEV_DEFAULTS.dataDir,
    serverArgs: [...serverArgs],
  };
  const problem = checkDevOptions(options);
  if (problem !== null) throw new UsageError(problem);
  return options;
}

const DEV_HELP = `
Examples:
  $ flotilla dev
  $ flotilla dev --nodes 5 --base-port 8001 --data-dir /tmp/flotilla
  $ flotilla dev -- --log-level debug        # extra flotilla server flags for every node

Node i (n1, n2, ...) listens on base-port + i - 1 with its data in <data-dir>/<id> and its log in
<data-dir>/<id>.log; the cluster secret is kept in <data-dir>/cluster-secret so a restart rejoins.
Client commands reach this cluster without --servers when the defaults are kept. Ctrl-C stops the
nodes gracefully; a second Ctrl-C kills them.

Exit codes: 0 stopped by Ctrl-C, 1 every node exited by itself, 2 usage.
`;

/** Adds `flotilla dev`. */
export function registerDevCommand(program: Command, { ctx, run }: CommandEnv): void {
  program
    .command('dev')
    .description('run a local cluster (3 nodes on 127.0.0.1:7401-7403, data in ./.flotilla)')
    .argument('[server-flags...]', 'after --: extra flags for every flotilla server')
    .option('--nodes <n>', `number of nodes, 1 to 9 (default ${DEV_DEFAULTS.nodes})`)
    .option('--base-port <port>', `port of the first node (default ${DEV_DEFAULTS.basePort})`)
    .option('--host <host>', `address to listen on (default ${DEV_DEFAULTS.host})`)
    .option('--data-dir <dir>', `where the nodes keep data and logs (default ${DEV_DEFAULTS.dataDir})`)
    .addHelpText('after', DEV_HELP)
    .action(
      run(async (serverArgs: string[], flags: DevFlags) =>
        ctx.runDevCluster({
          ...devOptionsFromFlags(flags, serverArgs),
          out: (line) => ctx.stdout.write(`${line}\n`),
          onStopSignal: (handler) => ctx.onStopSignal(() => handler()),
        }),
      ),
    );
}
