/**
 * The options every client command shares (`--servers`, `--token`, `--connect-timeout-ms`), how
 * they become SDK connect options, and `withClient`, which connects, runs a command's work and
 * always closes the connection.
 */

import type { ConnectOptions, FlotillaClient } from '@flotilla/client';
import { FlotillaError } from '@flotilla/shared';
import type { Command } from 'commander';
import type { CliContext } from './context.js';
import { optionalInteger, parseServers } from './parse.js';

/** The raw values of the shared options, as commander collects them. */
export interface ClientFlags {
  servers?: string;
  token?: string;
  connectTimeoutMs?: string;
}

/** Adds the shared client options to a command. */
export function addClientOptions(command: Command): Command {
  return command
    .option(
      '--servers <urls>',
      'cluster node URLs, comma-separated (env FLOTILLA_SERVERS; default: the 3 nodes of flotilla dev)',
    )
    .option('--token <token>', 'bearer token (env FLOTILLA_TOKEN)')
    .option('--connect-timeout-ms <ms>', 'give up when no node answers for this long (default 10000)');
}

/** Connect options from the shared flags and the environment. */
export function connectOptionsFromFlags(
  flags: ClientFlags,
  env: Record<string, string | undefined>,
): ConnectOptions {
  const servers = parseServers(flags.servers, env);
  const token = flags.token ?? (env.FLOTILLA_TOKEN || undefined);
  const connectTimeoutMs = optionalInteger(flags.connectTimeoutMs, '--connect-timeout-ms', {
    min: 1,
    max: 3_600_000,
  });
  return {
    servers,
    name: 'flotilla-cli',
    ...(token === undefined ? {} : { token }),
    ...(connectTimeoutMs === undefined ? {} : { connectTimeoutMs }),
  };
}

/** Adds the URLs tried to an error that says the cluster could not be reached. */
function unreachableHint(error: unknown, servers: readonly string[]): unknown {
  if (!(error instanceof FlotillaError) || error.code !== 'UNAVAILABLE') return error;
  const hint = `tried ${servers.join(', ')}; set --servers or FLOTILLA_SERVERS, or start a cluster with flotilla dev`;
  return new FlotillaError(error.code, `${error.message} (${hint})`, error.details, { cause: error });
}

/**
 * Connects, runs `work`, and closes: draining (pending acks and publishes finish) when the work
 * succeeded, at once when it failed.
 */
export async function withClient<T>(
  ctx: CliContext,
  flags: ClientFlags,
  work: (client: FlotillaClient) => Promise<T>,
): Promise<T> {
  const options = connectOptionsFromFlags(flags, ctx.env);
  let client: FlotillaClient;
  try {
    client = await ctx.connect(options);
  } catch (error) {
    throw unreachableHint(error, options.servers as string[]);
  }
  let result: T;
  try {
    result = await work(client);
  } catch (error) {
    await client.close({ drain: false });
    throw error;
  }
  await client.close();
  return result;
}
