/**
 * Reading deploy/docker-compose.yml the way Docker Compose does, as far as the deploy tests need:
 * YAML with merge keys (`<<: *node`), `${VAR}` / `${VAR:-default}` / `${VAR:?message}`
 * interpolation, service environments as maps, published ports and volume mounts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/cluster.js';

export const COMPOSE_FILE = join(REPO_ROOT, 'deploy/docker-compose.yml');

export interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  restart?: string;
  environment?: Record<string, string> | string[];
  ports?: (string | { target: number; published: string | number; host_ip?: string })[];
  volumes?: (string | { type: string; source: string; target: string })[];
  healthcheck?: { test: string[] | string; interval?: string };
  [key: string]: unknown;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

export function loadCompose(path = COMPOSE_FILE): ComposeFile {
  return parse(readFileSync(path, 'utf8'), { merge: true }) as ComposeFile;
}

/** Compose variable interpolation: `$$`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`. */
export function interpolate(text: string, env: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}/g, (match, name, op, arg) => {
    if (match === '$$') return '$';
    const value = env[name as string];
    const missing = op?.startsWith(':') ? !value : value === undefined;
    if (!missing) return value ?? '';
    if (op?.endsWith('?')) throw new Error(`compose: ${name} is required: ${arg}`);
    return op ? (arg as string) : '';
  });
}

/** A service's environment as written (before interpolation). */
export function rawEnvironment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
  return Object.fromEntries(
    env.map((line) => {
      const eq = line.indexOf('=');
      return [line.slice(0, eq), line.slice(eq + 1)];
    }),
  );
}

/** A service's environment as its container gets it, interpolated from `hostEnv`. */
export function serviceEnvironment(
  service: ComposeService,
  hostEnv: Record<string, string | undefined> = {},
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(rawEnvironment(service)).map(([k, v]) => [k, interpolate(v, hostEnv)]),
  );
}

export interface PublishedPort {
  hostIp: string | null;
  hostPort: number;
  containerPort: number;
}

/** `[ip:]host:container` short syntax or the long syntax. */
export function publishedPorts(service: ComposeService): PublishedPort[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p !== 'string') {
      return { hostIp: p.host_ip ?? null, hostPort: Number(p.published), containerPort: p.target };
    }
    const parts = p.split(':');
    const containerPort = Number(parts.pop());
    const hostPort = Number(parts.pop());
    return { hostIp: parts.length > 0 ? parts.join(':') : null, hostPort, containerPort };
  });
}

export interface VolumeMount {
  source: string;
  target: string;
}

export function volumeMounts(service: ComposeService): VolumeMount[] {
  return (service.volumes ?? []).map((v) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target };
    const [source = '', target = ''] = v.split(':');
    return { source, target };
  });
}

/** `host:port` → its parts (no IPv6 needed here). */
export function splitHostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  return { host: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

/** `n1=a:1,n2=b:2` → Map. */
export function parsePeerList(text: string): Map<string, string> {
  return new Map(
    text.split(',').map((part) => {
      const eq = part.indexOf('=');
      return [part.slice(0, eq).trim(), part.slice(eq + 1).trim()] as [string, string];
    }),
  );
}
