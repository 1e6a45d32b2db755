/**
 * The node's single listening port: HTTP (health, readiness, metrics, JSON API, dashboard) and
 * WebSocket upgrades routed by path (`/client` for clients, `/cluster` for peers).
 *
 * Mutating API calls that reach a follower are forwarded to the leader, so the dashboard and
 * scripts can talk to any node. Queue visibility follows the same per-queue permissions as the
 * WebSocket `listQueues`/`queueStats`/`peek` ops (gateway/ops.ts), so a token sees the same queues
 * over either door.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { Duplex } from 'node:stream';
import { type Action, ANONYMOUS_ADMIN, type Principal } from '../auth/tokens.js';
import type { Logger } from '../runtime/logger.js';
import type { ApiFailure, HttpApi } from './api.js';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface HttpServerOptions {
  api: HttpApi;
  /** WebSocket upgrade handlers by path. */
  upgrades: Record<string, UpgradeHandler>;
  /** Bearer-token check for `/api`; absent = no authentication. */
  authenticate?: (token: string | undefined) => Principal | null;
  /** Directory of the dashboard's static files, served at `/`. */
  staticDir?: string;
  logger: Logger;
}

const MAX_BODY_BYTES = 64 * 1024;
const FORWARDED_HEADER = 'x-flotilla-forwarded-by';
const STATUS_BY_CODE: Record<string, number> = {
  INVALID_ARGUMENT: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  QUEUE_NOT_FOUND: 404,
  NOT_FOUND: 404,
  QUEUE_EXISTS: 409,
  NOT_LEADER: 503,
  UNAVAILABLE: 503,
  OVERLOADED: 503,
  TIMEOUT: 504,
};
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

export class ApiError extends Error implements ApiFailure {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

function isFailure(err: unknown): err is ApiFailure {
  return typeof err === 'object' && err !== null && typeof (err as ApiFailure).code === 'string';
}

interface RouteContext {
  req: IncomingMessage;
  url: URL;
  params: string[];
  body: unknown;
  /** Who is asking; everything is allowed when the server runs without authentication. */
  principal: Principal;
}

/** Any one of `actions` on the queue picked from the route's parameters. */
interface Permission {
  actions: readonly Action[];
  queue: (params: string[]) => string;
}

interface Route {
  method: 'GET' | 'POST' | 'DELETE';
  pattern: RegExp;
  /** Permission needed: null = any authenticated caller. */
  needs: Permission | null;
  handle(ctx: RouteContext): Promise<unknown> | unknown;
}

/** Any permission on a queue lets a caller see it: the rule of the WebSocket listQueues/queueStats. */
const SEE_ACTIONS: readonly Action[] = ['manage', 'consume', 'publish'];

/** Whether `principal` may see `queue` in listings and stats. */
export function canSeeQueue(principal: Principal, queue: string): boolean {
  return SEE_ACTIONS.some((action) => principal.can(action, queue));
}

function intParam(url: URL, name: string, fallback: number, max: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null) return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new ApiError('INVALID_ARGUMENT', `${name}: expected an integer from 0 to ${max}`);
  }
  return value;
}

function field(body: unknown, name: string, kind: 'string' | 'number', required: boolean): unknown {
  const value =
    typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[name] : undefined;
  if (value === undefined || value === null) {
    if (required) throw new ApiError('INVALID_ARGUMENT', `${name}: required`);
    return null;
  }
  if (typeof value !== kind || (kind === 'number' && !Number.isSafeInteger(value))) {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `${name}: expected ${kind === 'number' ? 'an integer' : 'a string'}`,
    );
  }
  return value;
}

function routes(api: HttpApi): Route[] {
  const routeQueue = (p: string[]) => p[0]!;
  const manageAll: Permission = { actions: ['manage'], queue: () => '*' };
  const manageQueue: Permission = { actions: ['manage'], queue: routeQueue };
  // As the WebSocket ops: stats need any permission on the queue, peeking needs consume or manage.
  const seeQueue: Permission = { actions: SEE_ACTIONS, queue: routeQueue };
  const peekQueue: Permission = { actions: ['consume', 'manage'], queue: routeQueue };
  return [
    { method: 'GET', pattern: /^\/api\/cluster$/, needs: null, handle: () => api.cluster() },
    { method: 'GET', pattern: /^\/api\/digest$/, needs: null, handle: () => api.digest() },
    {
      method: 'GET',
      pattern: /^\/api\/queues$/,
      needs: null,
      handle: ({ principal }) => api.queues().filter((q) => canSeeQueue(principal, q.name)),
    },
    {
      method: 'GET',
      pattern: /^\/api\/queues\/([^/]+)$/,
      needs: seeQueue,
      handle: ({ params }) => api.queue(params[0]!) ?? notFound(params[0]!),
    },
    {
      method: 'GET',
      pattern: /^\/api\/queues\/([^/]+)\/messages$/,
      needs: peekQueue,
      handle: ({ params, url }) =>
        api.peek(
          params[0]!,
          intParam(url, 'fromSeq', 0, Number.MAX_SAFE_INTEGER),
          intParam(url, 'max', 50, 1000),
        ) ?? notFound(params[0]!),
    },
    {
      method: 'POST',
      pattern: /^\/api\/queues\/([^/]+)\/purge$/,
      needs: manageQueue,
      handle: async ({ params }) => ({ purged: await api.purge(params[0]!) }),
    },
    {
      method: 'POST',
      pattern: /^\/api\/queues\/([^/]+)\/redrive$/,
      needs: manageQueue,
      handle: async ({ params, body }) => ({
        moved: await api.redrive(
          params[0]!,
          field(body, 'target', 'string', false) as string | null,
          field(body, 'max', 'number', false) as number | null,
        ),
      }),
    },
    {
      method: 'POST',
      pattern: /^\/api\/cluster\/transfer-leadership$/,
      needs: manageAll,
      handle: async ({ body }) => {
        await api.transferLeadership(field(body, 'to', 'string', false) as string | null);
        return { ok: true };
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/cluster\/members$/,
      needs: manageAll,
      handle: async ({ body }) => {
        await api.addLearner(
          field(body, 'id', 'string', true) as string,
          field(body, 'address', 'string', true) as string,
        );
        return { ok: true };
      },
    },
    {
      method: 'POST',
      pattern: /^\/api\/cluster\/members\/([^/]+)\/promote$/,
      needs: manageAll,
      handle: async ({ params }) => {
        await api.promoteLearner(params[0]!);
        return { ok: true };
      },
    },
    {
      method: 'DELETE',
      pattern: /^\/api\/cluster\/members\/([^/]+)$/,
      needs: manageAll,
      handle: async ({ params }) => {
        await api.removeMember(params[0]!);
        return { ok: true };
      },
    },
  ];
}

function notFound(queue: string): never {
  throw new ApiError('QUEUE_NOT_FOUND', `queue ${queue} does not exist`);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(body);
}

/** Raised for a request body over MAX_BODY_BYTES: answered, then the connection is closed. */
class BodyTooLarge extends ApiError {
  constructor() {
    super('INVALID_ARGUMENT', `request body over ${MAX_BODY_BYTES} bytes`);
  }
}

function readBody(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        // Stop reading and buffering; the caller answers and then drops the connection.
        req.pause();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (size === 0) return resolve(null);
      try {
        resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      } catch {
        reject(new ApiError('INVALID_ARGUMENT', 'request body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

/** A percent-encoded path segment, decoded; bad encoding is the caller's error, not ours. */
function decodePathParam(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new ApiError(
      'INVALID_ARGUMENT',
      `path segment ${JSON.stringify(raw)} is not valid percent-encoding`,
    );
  }
}

/** The rest of the request will not be read: say so, and close the connection once answered. */
function closeAfterResponse(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('connection', 'close');
  res.once('finish', () => req.socket.destroy());
}

export class HttpFrontend {
  readonly server: Server;
  private readonly routes: Route[];

  constructor(private readonly options: HttpServerOptions) {
    this.routes = routes(options.api);
    this.server = createServer((req, res) => {
      this.dispatch(req, res).catch((err: unknown) => {
        options.logger.error({ err, url: req.url }, 'http handler failed');
        if (!res.headersSent) sendJson(res, 500, { code: 'INTERNAL', message: 'internal error' });
        else res.destroy();
      });
    });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => socket.destroy());
  }

  listen(host: string, port: number): Promise<{ host: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        const addr = this.server.address();
        if (!addr || typeof addr === 'string') return reject(new Error('no address'));
        resolve({ host, port: addr.port });
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const handler = this.options.upgrades[path];
    if (!handler) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
      return;
    }
    handler(req, socket, head);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const { api } = this.options;
    if (req.method === 'GET' && url.pathname === '/health') {
      const h = api.health();
      return sendJson(res, h.ok ? 200 : 503, {
        status: h.ok ? 'ok' : 'failing',
        nodeId: api.nodeId,
        reason: h.reason,
      });
    }
    if (req.method === 'GET' && url.pathname === '/ready') {
      const r = api.ready();
      return sendJson(res, r.ready ? 200 : 503, { ready: r.ready, nodeId: api.nodeId, reason: r.reason });
    }
    if (req.method === 'GET' && url.pathname === '/metrics') {
      const m = await api.metrics();
      res.writeHead(200, { 'content-type': m.contentType });
      res.end(m.body);
      return;
    }
    if (url.pathname.startsWith('/api/')) return this.api(req, res, url);
    if (req.method === 'GET' && this.options.staticDir) return this.serveStatic(res, url.pathname);
    sendJson(res, 404, { code: 'NOT_FOUND', message: `no route for ${req.method} ${url.pathname}` });
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    let route: Route | undefined;
    let rawParams: string[] = [];
    for (const r of this.routes) {
      const match = r.pattern.exec(url.pathname);
      if (match && r.method === req.method) {
        route = r;
        rawParams = match.slice(1);
        break;
      }
    }
    if (!route)
      return sendJson(res, 404, { code: 'NOT_FOUND', message: `no route for ${req.method} ${url.pathname}` });
    let body: unknown = null;
    try {
      const params = rawParams.map(decodePathParam);
      const principal = this.authorize(req, route, params);
      if (req.method !== 'GET') body = await readBody(req);
      const result = await route.handle({ req, url, params, body, principal });
      sendJson(res, 200, result);
    } catch (err) {
      const notLeader = isFailure(err) && err.code === 'NOT_LEADER';
      if (notLeader && route.method !== 'GET' && (await this.forward(req, res, url, body))) return;
      if (!isFailure(err)) throw err;
      if (err instanceof BodyTooLarge) closeAfterResponse(req, res);
      sendJson(res, STATUS_BY_CODE[err.code] ?? 500, {
        code: err.code,
        message: err.message,
        ...err.details,
      });
    }
  }

  /** The caller, once its token is valid and allows the route; throws UNAUTHORIZED or FORBIDDEN. */
  private authorize(req: IncomingMessage, route: Route, params: string[]): Principal {
    const { authenticate } = this.options;
    if (!authenticate) return ANONYMOUS_ADMIN;
    const header = req.headers.authorization;
    const token = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    const principal = authenticate(token);
    if (!principal) throw new ApiError('UNAUTHORIZED', 'a valid bearer token is required');
    const needs = route.needs;
    if (needs === null) return principal;
    const queue = needs.queue(params);
    if (!needs.actions.some((action) => principal.can(action, queue))) {
      throw new ApiError('FORBIDDEN', `${principal.name} may not ${needs.actions.join(' or ')} on ${queue}`);
    }
    return principal;
  }

  /** Replay a mutating request on the leader; false when there is no leader to forward to. */
  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    body: unknown,
  ): Promise<boolean> {
    const leader = this.options.api.leaderHttpUrl();
    if (!leader || req.headers[FORWARDED_HEADER]) return false;
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      [FORWARDED_HEADER]: this.options.api.nodeId,
    };
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    try {
      const upstream = await fetch(`${leader}${url.pathname}${url.search}`, {
        method: req.method,
        headers,
        body: body === null ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
      res.writeHead(upstream.status, {
        'content-type': upstream.headers.get('content-type') ?? 'application/json',
      });
      res.end(Buffer.from(await upstream.arrayBuffer()));
      return true;
    } catch (err) {
      this.options.logger.warn({ err, leader }, 'forwarding to the leader failed');
      return false;
    }
  }

  private async serveStatic(res: ServerResponse, pathname: string): Promise<void> {
    const root = resolve(this.options.staticDir!);
    const relative = normalize(pathname === '/' ? '/index.html' : pathname).replace(/^([/\\])+/, '');
    const file = join(root, relative);
    if (!file.startsWith(root + sep) && file !== root)
      return sendJson(res, 404, { code: 'NOT_FOUND', message: 'no such file' });
    try {
      const data = await readFile(file);
      res.writeHead(200, { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(data);
    } catch {
      sendJson(res, 404, { code: 'NOT_FOUND', message: 'no such file' });
    }
  }
}
