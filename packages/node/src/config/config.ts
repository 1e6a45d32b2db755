/**
 * Server configuration: one validated object built from (highest precedence first) command-line
 * flags, `FLOTILLA_*` environment variables, a JSON config file, and defaults.
 *
 * Every setting has the same name in all three places: `--node-id` ↔ `FLOTILLA_NODE_ID` ↔
 * `"nodeId"` in the config file. Invalid values stop the server with a message naming the setting.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/** A `host:port` pair. */
export interface HostPort {
  host: string;
  port: number;
}

export interface ServerConfig {
  nodeId: string;
  dataDir: string;
  listen: HostPort;
  /** Address peers (and clients, as a fallback) use to reach this node. */
  advertise: HostPort;
  /** Initial voters, including this node: id → advertised `host:port`. */
  peers: Map<string, HostPort>;
  /** Shared secret peers prove with a challenge–response. Required for clusters of more than one node. */
  clusterSecret: string;
  /** File of bearer tokens and their permissions; null = no authentication (development only). */
  authTokens: string | null;
  /** Start without bootstrapping a cluster: wait for a leader to add this node as a learner. */
  join: boolean;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Raft timing. A leader that dies is replaced after roughly one election timeout. */
  tickMs: number;
  electionTimeoutMs: number;
  heartbeatMs: number;
  /** Take a snapshot (and compact the log) after this many log bytes since the last one. */
  snapshotLogBytes: number;
  /** Limits on what clients can open. */
  maxSessions: number;
  maxSubscriptionsPerSession: number;
}

const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The settings users can give, with their flag names; the rest of the file derives from this. */
export const SETTINGS = [
  { key: 'nodeId', flag: 'node-id', help: 'this node id (stable for its life), e.g. n1' },
  {
    key: 'dataDir',
    flag: 'data-dir',
    help: 'directory for the log, snapshots and state (default .flotilla/<node-id>)',
  },
  {
    key: 'listen',
    flag: 'listen',
    help: 'host:port to listen on for clients, peers and HTTP (default 127.0.0.1:7401)',
  },
  {
    key: 'advertise',
    flag: 'advertise',
    help: 'host:port others use to reach this node (default: --listen)',
  },
  { key: 'peers', flag: 'peers', help: 'initial voters: id=host:port,... (include this node)' },
  { key: 'clusterSecret', flag: 'cluster-secret', help: 'shared secret for peer authentication' },
  { key: 'authTokens', flag: 'auth-tokens', help: 'JSON file of client bearer tokens and permissions' },
  { key: 'join', flag: 'join', help: 'do not bootstrap; wait to be added to an existing cluster' },
  { key: 'logLevel', flag: 'log-level', help: 'fatal|error|warn|info|debug|trace|silent (default info)' },
  { key: 'tickMs', flag: 'tick-ms', help: 'Raft tick in ms (default 50)' },
  { key: 'electionTimeoutMs', flag: 'election-timeout-ms', help: 'election timeout in ms (default 1000)' },
  { key: 'heartbeatMs', flag: 'heartbeat-ms', help: 'leader heartbeat interval in ms (default 100)' },
  {
    key: 'snapshotLogBytes',
    flag: 'snapshot-log-bytes',
    help: 'snapshot after this many log bytes (default 256 MiB)',
  },
  { key: 'maxSessions', flag: 'max-sessions', help: 'maximum client connections (default 10000)' },
  {
    key: 'maxSubscriptionsPerSession',
    flag: 'max-subscriptions-per-session',
    help: 'maximum subscriptions per connection (default 256)',
  },
] as const;

export type SettingKey = (typeof SETTINGS)[number]['key'];
/** Raw values as given; `config` names a JSON config file. */
export type RawSettings = Partial<Record<SettingKey, unknown>> & { config?: string };

/** `FLOTILLA_` + upper-snake name: `nodeId` → `FLOTILLA_NODE_ID`. */
export function envName(key: SettingKey): string {
  return `FLOTILLA_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function parseHostPort(text: string, what: string): HostPort {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[2]) : Number.NaN;
  if (!match || port < 1 || port > 65535) {
    throw new ConfigError(`${what}: expected host:port, got ${JSON.stringify(text)}`);
  }
  return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
}

export function formatHostPort(hp: HostPort): string {
  return hp.host.includes(':') ? `[${hp.host}]:${hp.port}` : `${hp.host}:${hp.port}`;
}

/** `n1=a:1,n2=b:2` → Map. */
export function parsePeers(text: string): Map<string, HostPort> {
  const peers = new Map<string, HostPort>();
  for (const part of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf('=');
    const id = part.slice(0, eq);
    if (eq <= 0 || !NODE_ID.test(id))
      throw new ConfigError(`peers: expected id=host:port, got ${JSON.stringify(part)}`);
    if (peers.has(id)) throw new ConfigError(`peers: node ${id} is listed twice`);
    peers.set(id, parseHostPort(part.slice(eq + 1), `peers (${id})`));
  }
  return peers;
}

const bool = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0', '']).transform((v) => v === 'true' || v === '1' || v === ''),
]);
const ms = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const schema = z
  .object({
    nodeId: z.string().regex(NODE_ID, 'letters, digits, _ . - (at most 64)'),
    dataDir: z.string().min(1).optional(),
    listen: z.string().default('127.0.0.1:7401'),
    advertise: z.string().optional(),
    peers: z.string().optional(),
    clusterSecret: z.string().optional(),
    authTokens: z.string().min(1).optional(),
    join: bool.default(false),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    tickMs: ms(1, 1000).default(50),
    electionTimeoutMs: ms(50, 60_000).default(1000),
    heartbeatMs: ms(5, 10_000).default(100),
    snapshotLogBytes: z.coerce
      .number()
      .int()
      .min(1024)
      .default(256 * 1024 * 1024),
    maxSessions: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
    maxSubscriptionsPerSession: z.coerce.number().int().min(1).max(100_000).default(256),
  })
  .strict();

/**
 * Merge the sources (flags win over env, env over file) and validate.
 * `flags` holds only the flags the user actually gave.
 */
export function loadServerConfig(
  flags: RawSettings,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): ServerConfig {
  const fromFile = readConfigFile(flags, env, cwd);
  const merged: Record<string, unknown> = { ...fromFile };
  for (const { key } of SETTINGS) {
    const envValue = env[envName(key)];
    if (envValue !== undefined && envValue !== '') merged[key] = envValue;
    if (flags[key] !== undefined) merged[key] = flags[key];
  }
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  return finish(parsed.data, cwd);
}

function readConfigFile(flags: RawSettings, env: NodeJS.ProcessEnv, cwd: string): Record<string, unknown> {
  const path = flags.config ?? env.FLOTILLA_CONFIG;
  if (typeof path !== 'string' || path === '') return {};
  let text: string;
  try {
    text = readFileSync(resolve(cwd, path), 'utf8');
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`config file ${path}: expected a JSON object`);
  }
  // Numbers and booleans in JSON are accepted as they are; lists of peers may be objects.
  const obj = value as Record<string, unknown>;
  if (obj.peers && typeof obj.peers === 'object' && !Array.isArray(obj.peers)) {
    obj.peers = Object.entries(obj.peers as Record<string, unknown>)
      .map(([id, addr]) => `${id}=${String(addr)}`)
      .join(',');
  }
  return obj;
}

function finish(data: z.infer<typeof schema>, cwd: string): ServerConfig {
  const listen = parseHostPort(data.listen, 'listen');
  const advertise = data.advertise ? parseHostPort(data.advertise, 'advertise') : listen;
  if (!data.advertise && (listen.host === '0.0.0.0' || listen.host === '::')) {
    throw new ConfigError('advertise: required when listening on a wildcard address');
  }
  const peers = data.peers ? parsePeers(data.peers) : new Map<string, HostPort>();
  if (!data.join && !peers.has(data.nodeId)) peers.set(data.nodeId, advertise);
  if (data.heartbeatMs * 3 > data.electionTimeoutMs) {
    throw new ConfigError('heartbeatMs: must be at most a third of electionTimeoutMs');
  }
  if (data.tickMs > data.heartbeatMs) throw new ConfigError('tickMs: must not exceed heartbeatMs');
  const clusterSecret = data.clusterSecret ?? '';
  if ((peers.size > 1 || data.join) && clusterSecret.length < 8) {
    throw new ConfigError(
      'clusterSecret: required (at least 8 characters) for a cluster of more than one node',
    );
  }
  return {
    nodeId: data.nodeId,
    dataDir: resolve(cwd, data.dataDir ?? `.flotilla/${data.nodeId}`),
    listen,
    advertise,
    peers,
    clusterSecret,
    authTokens: data.authTokens ? resolve(cwd, data.authTokens) : null,
    join: data.join,
    logLevel: data.logLevel,
    tickMs: data.tickMs,
    electionTimeoutMs: data.electionTimeoutMs,
    heartbeatMs: data.heartbeatMs,
    snapshotLogBytes: data.snapshotLogBytes,
    maxSessions: data.maxSessions,
    maxSubscriptionsPerSession: data.maxSubscriptionsPerSession,
  };
}
