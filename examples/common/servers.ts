/**
 * Where the examples find the cluster: `--servers` (comma-separated), else the FLOTILLA_SERVERS
 * environment variable, else the three nodes `flotilla dev` starts on this machine. The same
 * order the `flotilla` command uses, so one exported variable serves both.
 */

/** The client URLs of the cluster `flotilla dev` starts with its default ports. */
export const DEV_CLUSTER_SERVERS: readonly string[] = [
  'ws://127.0.0.1:7401',
  'ws://127.0.0.1:7402',
  'ws://127.0.0.1:7403',
];

/** The cluster's URLs from a `--servers` value, the environment, or the dev defaults. */
export function resolveServers(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const source = flag ?? env.FLOTILLA_SERVERS;
  if (source === undefined || source.trim() === '') return [...DEV_CLUSTER_SERVERS];
  return source
    .split(',')
    .map((url) => url.trim())
    .filter((url) => url !== '');
}
