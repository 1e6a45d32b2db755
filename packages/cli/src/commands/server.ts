/**
 * `flotilla server`: runs one broker node. Every server setting is a flag (`--node-id`), an
 * environment variable (`FLOTILLA_NODE_ID`) and a config-file key (`"nodeId"`); the broker's
 * `loadServerConfig` merges and validates them. The flags are generated from the broker's own
 * SETTINGS list, so a new setting needs no change here.
 *
 * Life cycle: a bad configuration exits 2; SIGTERM or SIGINT stops gracefully (leadership handed
 * over, confirms finished) and exits 0; a second signal during that exits 1 at once; a server that
 * stops by itself or dies exits 1.
 */

import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { describeError, EXIT } from '../exit-codes.js';
import type { CommandEnv } from '../program.js';
import type { RunningServerHandle, ServerApi, ServerSetting } from '../server-api.js';

/** Settings that are switches rather than values. */
const BOOLEAN_SETTINGS: ReadonlySet<string> = new Set(['join']);

/** The commander option for one setting, e.g. `--node-id <value>` with its env variable in the help. */
export function settingOption(setting: ServerSetting, envName: (key: string) => string): [string, string] {
  const spec = BOOLEAN_SETTINGS.has(setting.key) ? `--${setting.flag}` : `--${setting.flag} <value>`;
  return [spec, `${setting.help} [env ${envName(setting.key)}]`];
}

/** `--node-id` → `nodeId`: the attribute commander stores a flag under, matching the setting key. */
function attributeOf(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/**
 * The raw settings to hand to `loadServerConfig`: only the flags actually given (so environment
 * and config file still apply to the rest), plus `config` when `--config` was given.
 */
export function rawSettingsFromFlags(
  settings: readonly ServerSetting[],
  flags: Record<string, unknown>,
): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const setting of settings) {
    const value = flags[attributeOf(setting.flag)];
    if (value !== undefined) raw[setting.key] = value;
  }
  if (typeof flags.config === 'string') raw.config = flags.config;
  return raw;
}

/**
 * Keeps a started server until it ends: the first stop signal stops it gracefully (exit 0, or 1
 * if stopping failed), a second one exits 1 at once, and an end nobody asked for exits 1.
 */
export function superviseServer(server: RunningServerHandle, ctx: CliContext): Promise<number> {
  let removeSignals = () => {};
  const outcome = new Promise<number>((resolve) => {
    let stopping = false;
    removeSignals = ctx.onStopSignal((signal) => {
      if (stopping) {
        ctx.stderr.write(`flotilla server: ${signal} again; exiting without finishing the shutdown\n`);
        ctx.forceExit(EXIT.failed);
        return;
      }
      stopping = true;
      server.stop(signal).then(
        () => resolve(EXIT.ok),
        (error: unknown) => {
          ctx.stderr.write(`flotilla server: graceful stop failed: ${describeError(error)}\n`);
          resolve(EXIT.failed);
        },
      );
    });
    server.closed.then(
      () => {
        if (stopping) return;
        ctx.stderr.write('flotilla server: the server stopped unexpectedly\n');
        resolve(EXIT.failed);
      },
      (error: unknown) => {
        ctx.stderr.write(`flotilla server: the server died: ${describeError(error)}\n`);
        resolve(EXIT.failed);
      },
    );
  });
  return outcome.finally(() => removeSignals());
}

/** Validates the configuration, starts the server and keeps it until it ends; resolves with the exit code. */
export async function runServer(
  api: ServerApi,
  raw: Record<string, unknown>,
  ctx: CliContext,
): Promise<number> {
  let config: unknown;
  try {
    config = api.loadServerConfig(raw, ctx.env);
  } catch (error) {
    if (!(error instanceof api.ConfigError)) throw error;
    ctx.stderr.write(`flotilla server: ${error.message}\n`);
    return EXIT.usage;
  }
  let server: RunningServerHandle;
  try {
    server = await api.startServer(config);
  } catch (error) {
    ctx.stderr.write(`flotilla server: could not start: ${describeError(error)}\n`);
    return EXIT.failed;
  }
  return superviseServer(server, ctx);
}

const SERVER_HELP = `
Every setting can also be given as an environment variable (shown in brackets) or as a key of the
--config JSON file (e.g. "nodeId"); flags win over the environment, which wins over the file.

Examples:
  $ flotilla server --node-id n1 --listen 127.0.0.1:7401
  $ flotilla server --node-id n1 --listen 0.0.0.0:7400 --advertise n1:7400 \\
      --peers n1=n1:7400,n2=n2:7400,n3=n3:7400 --cluster-secret "$SECRET" --data-dir /var/lib/flotilla
  $ FLOTILLA_NODE_ID=n2 flotilla server --config cluster.json

One port serves clients (WebSocket /client), peers (/cluster) and HTTP (/health, /ready,
/metrics, /api/..., the dashboard). SIGTERM or Ctrl-C stops gracefully: leadership is handed to
another node and confirms in flight finish. A second signal exits at once (nothing acknowledged is
lost; the node recovers from its log on the next start).

Exit codes: 0 stopped by a signal, 1 failed to start, died or stopped by itself, 2 invalid
configuration.
`;

/** Adds `flotilla server`. Its setting flags are added once the broker package is loaded. */
export function registerServerCommand(program: Command, { ctx, run }: CommandEnv): void {
  let api: ServerApi | undefined;
  const command = program
    .command('server')
    .description('run a broker node (settings from flags, FLOTILLA_* environment or --config)')
    .option('--config <file>', 'JSON config file [env FLOTILLA_CONFIG]')
    .addHelpText('after', SERVER_HELP)
    .action(
      run(async (flags: Record<string, unknown>) => {
        if (api === undefined) throw new Error('the broker package was not loaded');
        return runServer(api, rawSettingsFromFlags(api.SETTINGS, flags), ctx);
      }),
    );
  // Only `flotilla server` (and its --help) loads the broker: other commands start without it.
  program.hook('preSubcommand', async (_root, subcommand) => {
    if (subcommand !== command || api !== undefined) return;
    api = await ctx.loadServerApi();
    for (const setting of api.SETTINGS) command.option(...settingOption(setting, api.envName));
  });
}
