/**
 * What `flotilla server` needs from the broker package, loaded on demand: client commands
 * (`publish`, `status`...) never load the broker, its storage and metrics, so they start fast.
 *
 * The interface is the subset of `@flotilla/node`'s exports the command uses; `loadServerApi`
 * checks the loaded module has them, so a mismatched build fails with a clear message.
 */

/** One server setting: `key` in config files, `--flag` on the command line. */
export interface ServerSetting {
  readonly key: string;
  readonly flag: string;
  readonly help: string;
}

/** The running broker, as far as the command needs it. */
export interface RunningServerHandle {
  /** `http://host:port` actually bound. */
  readonly httpUrl: string;
  /** Graceful stop: hand over leadership, finish confirms, flush, close. Idempotent. */
  stop(reason?: string): Promise<void>;
  /** Resolves when the server stopped, rejects if it died of an error. */
  readonly closed: Promise<void>;
}

export interface ServerApi {
  readonly SETTINGS: readonly ServerSetting[];
  /** `nodeId` → `FLOTILLA_NODE_ID`. */
  envName(key: string): string;
  /** The error class `loadServerConfig` throws for bad settings. */
  readonly ConfigError: abstract new (
    message: string,
  ) => Error;
  /** Merges flags (given ones only) over `FLOTILLA_*` variables of `env` and the `--config` file, and validates. */
  loadServerConfig(flags: Record<string, unknown>, env: Record<string, string | undefined>): unknown;
  /** Starts the broker with what `loadServerConfig` returned. */
  startServer(config: unknown): Promise<RunningServerHandle>;
}

/** Kept in a variable so bundlers and the type checker do not resolve it ahead of time. */
const NODE_PACKAGE = '@flotilla/node';

const REQUIRED_EXPORTS = ['SETTINGS', 'envName', 'ConfigError', 'loadServerConfig', 'startServer'] as const;

/** Checks a loaded module has what the server command uses. */
export function asServerApi(module: Record<string, unknown>): ServerApi {
  const missing = REQUIRED_EXPORTS.filter((name) => module[name] === undefined);
  if (missing.length > 0) {
    throw new Error(`${NODE_PACKAGE} does not export ${missing.join(', ')}; rebuild with npx tsc -b`);
  }
  if (!Array.isArray(module.SETTINGS)) throw new Error(`${NODE_PACKAGE}: SETTINGS is not a list`);
  return module as unknown as ServerApi;
}

export async function loadServerApi(): Promise<ServerApi> {
  let module: Record<string, unknown>;
  try {
    module = (await import(NODE_PACKAGE)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`cannot load the broker (${NODE_PACKAGE}): ${(error as Error).message}`, {
      cause: error,
    });
  }
  return asServerApi(module);
}
