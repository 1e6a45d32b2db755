/**
 * Parsers for option values given as text on the command line. Each names the flag in its error
 * (a UsageError, exit code 2), so `--max-deliveries x` says which option was wrong and why.
 */

import { normalizeServerUrl } from '@flotilla/client';
import { UsageError } from './exit-codes.js';

export interface IntRange {
  min?: number;
  max?: number;
}

/** A whole number, digits with optional `_` separators (`10_000`), inside `range`. */
export function parseInteger(text: string, flag: string, range: IntRange = {}): number {
  const min = range.min ?? 0;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  const trimmed = text.trim();
  const value = /^-?\d[\d_]*$/.test(trimmed) ? Number(trimmed.replaceAll('_', '')) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag}: expected ${describeRange(min, max)}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function describeRange(min: number, max: number): string {
  return max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
}

/** Parses `text` when given; undefined stays undefined. */
export function optionalInteger(
  text: string | undefined,
  flag: string,
  range?: IntRange,
): number | undefined {
  return text === undefined ? undefined : parseInteger(text, flag, range);
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1000,
  kb: 1000,
  kib: 1024,
  m: 1000 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1000 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * A size in bytes: `512`, `4KiB` (×1024), `4kB` or `4k` (×1000), `1MiB`, `2MB`, `1GiB`. Units are
 * case-insensitive; the binary ones say `i`.
 */
export function parseByteSize(text: string, flag: string, range: IntRange = {}): number {
  const match = /^(\d[\d_]*(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim());
  const unit = match ? BYTE_UNITS[match[2]!.toLowerCase()] : undefined;
  const value = match && unit !== undefined ? Number(match[1]!.replaceAll('_', '')) * unit : Number.NaN;
  const min = range.min ?? 0;
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(
      `${flag}: expected a size in bytes ${range} (e.g. 512, 4KiB, 1MB), got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** A positive rate such as `500` or `2.5` (per second). */
export function parseRate(text: string, flag: string): number {
  const value = /^\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : Number.NaN;
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new UsageError(`${flag}: expected a positive number per second, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** One of `choices`, exactly. */
export function parseChoice<T extends string>(text: string, flag: string, choices: readonly T[]): T {
  if (!choices.includes(text as T)) {
    throw new UsageError(`${flag}: expected one of ${choices.join(', ')}, got ${JSON.stringify(text)}`);
  }
  return text as T;
}

/** `k=v` pairs (the value may itself contain `=`) as a record; a key given twice is an error. */
export function parseHeaders(pairs: readonly string[], flag = '--header'): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq < 0 ? '' : pair.slice(0, eq).trim();
    if (key === '') throw new UsageError(`${flag}: expected key=value, got ${JSON.stringify(pair)}`);
    if (Object.hasOwn(headers, key))
      throw new UsageError(`${flag}: header ${JSON.stringify(key)} given twice`);
    headers[key] = pair.slice(eq + 1);
  }
  return headers;
}

/** Where `flotilla dev` listens by default: what client commands try when told nothing else. */
export const DEFAULT_SERVERS = 'ws://127.0.0.1:7401,ws://127.0.0.1:7402,ws://127.0.0.1:7403';

/**
 * The cluster's URLs from `--servers`, else `FLOTILLA_SERVERS`, else the `flotilla dev` defaults.
 * Comma- or space-separated; each may be `host:port`, `ws(s)://` or `http(s)://`.
 */
export function parseServers(flag: string | undefined, env: Record<string, string | undefined>): string[] {
  const source = flag ?? (env.FLOTILLA_SERVERS || undefined);
  const name = flag === undefined && source !== undefined ? 'FLOTILLA_SERVERS' : '--servers';
  const items = (source ?? DEFAULT_SERVERS).split(/[\s,]+/).filter((item) => item !== '');
  if (items.length === 0) throw new UsageError(`${name}: give at least one server URL`);
  return items.map((item) => {
    try {
      return normalizeServerUrl(item, name);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  });
}
