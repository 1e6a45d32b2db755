/**
 * Client options: what `connect()` accepts, the defaults and the reasoning behind them, and the
 * normalisation of server URLs.
 */

import { FlotillaError, invalidArgument } from '@flotilla/shared';
import type { WebSocketFactory } from './transport.js';

/** Options of `connect()`. Only `servers` is required. */
export interface ConnectOptions {
  /**
   * Broker URLs this client may use, e.g. `['ws://127.0.0.1:7401', 'ws://127.0.0.1:7402']`.
   * `ws://`, `wss://`, `http://`, `https://` or a bare `host:port`; the path defaults to `/client`.
   * Give every node's URL as reachable *from this client*: the SDK learns which URL is which node
   * and follows the leader to your URL for it (the leader's advertised URL is only a fallback).
   */
  servers: string | readonly string[];
  /** Bearer token sent in hello. */
  token?: string;
  /** Client name shown in the broker's logs and dashboard. */
  name?: string;
  /**
   * Deadline of one request across retries and failovers, in ms (default 30,000: several
   * elections fit). A request still without outcome then rejects with TIMEOUT.
   */
  requestTimeoutMs?: number;
  /** How long `connect()` keeps trying the servers before it rejects, in ms (default 10,000). */
  connectTimeoutMs?: number;
  /** How long one connection attempt (socket open plus hello) may take, in ms (default 5,000). */
  helloTimeoutMs?: number;
  /** Reconnect backoff: exponential with jitter from `initialMs` (default 100) to `maxMs` (default 2,000). */
  reconnectDelayMs?: { initialMs?: number; maxMs?: number };
  /**
   * Publishes in flight before `publish()` waits for confirms (default 1,000): enough to keep
   * ten 100-message frames in flight, which is where the data path stops getting faster.
   */
  maxUnconfirmedMessages?: number;
  /** Body bytes in flight before `publish()` waits for confirms (default 16 MiB). */
  maxUnconfirmedBytes?: number;
  /**
   * Messages per publish frame (default 100, capped by the server's maxPublishBatch). Smaller
   * frames let several be in flight so disk and network overlap; 100 beat 1,000 by 27%.
   */
  maxBatchMessages?: number;
  /**
   * Silence from the node, in ms, after which the SDK sends it a small probe request (default
   * 2,000). Busy connections never probe; an idle one sends one probe per interval.
   */
  heartbeatIntervalMs?: number;
  /**
   * How long a probe may go unanswered, with nothing else heard, before the connection is dropped
   * as dead (default 2,000). A paused or vanished node keeps its TCP connections open: without
   * this the SDK would wait for request deadlines while a new leader serves within about a
   * second. So a node silent for heartbeatIntervalMs + heartbeatTimeoutMs (4 s by default) is
   * left; raise both where nodes may stall that long and still be healthy (long GC pauses).
   */
  heartbeatTimeoutMs?: number;
  /** Creates WebSockets (default: `ws` under Node, the global WebSocket elsewhere). */
  webSocket?: WebSocketFactory;
}

/** Options with every default filled in. */
export interface ResolvedOptions {
  servers: string[];
  token: string | undefined;
  name: string | undefined;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  helloTimeoutMs: number;
  reconnectDelayMs: { initialMs: number; maxMs: number };
  maxUnconfirmedMessages: number;
  maxUnconfirmedBytes: number;
  maxBatchMessages: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  webSocket: WebSocketFactory | undefined;
}

/** The defaults `connect()` fills in; the reasons are on each option of ConnectOptions. */
export const DEFAULT_OPTIONS = {
  requestTimeoutMs: 30_000,
  connectTimeoutMs: 10_000,
  helloTimeoutMs: 5_000,
  reconnectInitialMs: 100,
  reconnectMaxMs: 2_000,
  maxUnconfirmedMessages: 1_000,
  maxUnconfirmedBytes: 16 * 1024 * 1024,
  maxBatchMessages: 100,
  heartbeatIntervalMs: 2_000,
  heartbeatTimeoutMs: 2_000,
} as const;

/** The path of the client WebSocket on a node's listen port. */
const CLIENT_PATH = '/client';

/**
 * A server address as a WebSocket URL: adds `ws://` to a bare `host:port`, maps http(s) to
 * ws(s), and uses `/client` when no path is given. Throws INVALID_ARGUMENT naming `field`.
 */
export function normalizeServerUrl(input: string, field = 'servers'): string {
  const text = input.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `ws://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw invalidArgument(field, `not a URL: ${JSON.stringify(input)}`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw invalidArgument(field, `expected a ws:// or wss:// URL, got ${JSON.stringify(input)}`);
  }
  if (url.pathname === '' || url.pathname === '/') url.pathname = CLIENT_PATH;
  return url.toString();
}

function positiveInt(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1)
    throw invalidArgument(field, `expected a positive integer, got ${value}`);
  return value;
}

/** Checks options and fills in defaults; throws INVALID_ARGUMENT naming the bad option. */
export function resolveOptions(options: ConnectOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) throw invalidArgument('options', 'expected an object');
  const list = typeof options.servers === 'string' ? [options.servers] : options.servers;
  if (!Array.isArray(list) || list.length === 0) {
    throw new FlotillaError('INVALID_ARGUMENT', 'servers: give at least one server URL', {
      field: 'servers',
    });
  }
  const servers = [...new Set(list.map((url, i) => normalizeServerUrl(String(url), `servers[${i}]`)))];
  const reconnect = options.reconnectDelayMs ?? {};
  const initialMs = positiveInt(
    reconnect.initialMs,
    DEFAULT_OPTIONS.reconnectInitialMs,
    'reconnectDelayMs.initialMs',
  );
  return {
    servers,
    token: options.token,
    name: options.name,
    requestTimeoutMs: positiveInt(
      options.requestTimeoutMs,
      DEFAULT_OPTIONS.requestTimeoutMs,
      'requestTimeoutMs',
    ),
    connectTimeoutMs: positiveInt(
      options.connectTimeoutMs,
      DEFAULT_OPTIONS.connectTimeoutMs,
      'connectTimeoutMs',
    ),
    helloTimeoutMs: positiveInt(options.helloTimeoutMs, DEFAULT_OPTIONS.helloTimeoutMs, 'helloTimeoutMs'),
    reconnectDelayMs: {
      initialMs,
      maxMs: Math.max(
        initialMs,
        positiveInt(reconnect.maxMs, DEFAULT_OPTIONS.reconnectMaxMs, 'reconnectDelayMs.maxMs'),
      ),
    },
    maxUnconfirmedMessages: positiveInt(
      options.maxUnconfirmedMessages,
      DEFAULT_OPTIONS.maxUnconfirmedMessages,
      'maxUnconfirmedMessages',
    ),
    maxUnconfirmedBytes: positiveInt(
      options.maxUnconfirmedBytes,
      DEFAULT_OPTIONS.maxUnconfirmedBytes,
      'maxUnconfirmedBytes',
    ),
    maxBatchMessages: positiveInt(
      options.maxBatchMessages,
      DEFAULT_OPTIONS.maxBatchMessages,
      'maxBatchMessages',
    ),
    heartbeatIntervalMs: positiveInt(
      options.heartbeatIntervalMs,
      DEFAULT_OPTIONS.heartbeatIntervalMs,
      'heartbeatIntervalMs',
    ),
    heartbeatTimeoutMs: positiveInt(
      options.heartbeatTimeoutMs,
      DEFAULT_OPTIONS.heartbeatTimeoutMs,
      'heartbeatTimeoutMs',
    ),
    webSocket: options.webSocket,
  };
}
