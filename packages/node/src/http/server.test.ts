/**
 * Proves the HTTP frontend's contract: status codes of /health and /ready, the JSON API routes
 * with their error codes (bad path encoding and oversize bodies included), bearer-token checks,
 * per-queue visibility of queue stats (the WebSocket ops' rule), forwarding of mutations from a
 * follower to the leader, safe static file serving, and WebSocket upgrade routing by path.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QueueStats } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { TokenAuthenticator } from '../auth/tokens.js';
import type { NodeStatus } from '../cluster/types.js';
import { silentLogger } from '../runtime/logger.js';
import type { HttpApi } from './api.js';
import { ApiError, HttpFrontend, type HttpServerOptions } from './server.js';

const status = (nodeId: string, role: NodeStatus['role']): NodeStatus => ({
  nodeId,
  role,
  term: 3,
  leaderId: 'n1',
  leaderAddress: '127.0.0.1:1',
  commitIndex: 10,
  appliedIndex: 10,
  lastIndex: 10,
  snapshotIndex: 0,
  members: [],
});

function fakeApi(
  nodeId: string,
  leader: boolean,
  calls: string[],
  leaderUrl: () => string | null = () => null,
): HttpApi {
  const needLeader = () => {
    if (!leader) throw new ApiError('NOT_LEADER', 'not the leader', { leaderId: 'n1' });
  };
  return {
    nodeId,
    health: () => ({ ok: true }),
    ready: () => (leader ? { ready: true } : { ready: false, reason: 'no leader' }),
    metrics: async () => ({ contentType: 'text/plain', body: 'flotilla_up 1\n' }),
    cluster: () => status(nodeId, leader ? 'leader' : 'follower'),
    queues: () => [],
    queue: (name) => (name === 'q' ? ({ name: 'q', depth: 1 } as never) : null),
    peek: (name, fromSeq, max) => (name === 'q' ? [{ seq: fromSeq, max } as never] : null),
    digest: () => ({ appliedIndex: 10, digest: 'abc' }),
    redrive: async (dlq, target, max) => {
      needLeader();
      calls.push(`redrive ${dlq} ${target} ${max} on ${nodeId}`);
      return 2;
    },
    purge: async (name) => {
      needLeader();
      if (name !== 'q') throw new ApiError('QUEUE_NOT_FOUND', 'no queue');
      return 1;
    },
    transferLeadership: async () => needLeader(),
    addLearner: async (id, address) => {
      needLeader();
      calls.push(`add ${id} ${address}`);
    },
    promoteLearner: async () => needLeader(),
    removeMember: async () => needLeader(),
    leaderHttpUrl: leaderUrl,
  };
}

const frontends: HttpFrontend[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(frontends.splice(0).map((f) => f.close()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function start(options: Partial<HttpServerOptions> & { api: HttpApi }): Promise<string> {
  const f = new HttpFrontend({ upgrades: {}, logger: silentLogger, ...options });
  frontends.push(f);
  const { port } = await f.listen('127.0.0.1', 0);
  return `http://127.0.0.1:${port}`;
}

describe('HttpFrontend', () => {
  it('serves health, readiness and metrics', async () => {
    const leader = await start({ api: fakeApi('n1', true, []) });
    const follower = await start({ api: fakeApi('n2', false, []) });
    expect((await fetch(`${leader}/health`)).status).toBe(200);
    expect((await fetch(`${leader}/ready`)).status).toBe(200);
    const notReady = await fetch(`${follower}/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({ ready: false, nodeId: 'n2', reason: 'no leader' });
    expect(await (await fetch(`${leader}/metrics`)).text()).toContain('flotilla_up 1');
  });

  it('answers API routes with JSON and typed errors', async () => {
    const url = await start({ api: fakeApi('n1', true, []) });
    expect(await (await fetch(`${url}/api/cluster`)).json()).toMatchObject({ nodeId: 'n1', role: 'leader' });
    expect(await (await fetch(`${url}/api/queues/q`)).json()).toMatchObject({ name: 'q' });
    const missing = await fetch(`${url}/api/queues/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'QUEUE_NOT_FOUND' });
    expect(await (await fetch(`${url}/api/queues/q/messages?fromSeq=5&max=7`)).json()).toEqual([
      { seq: 5, max: 7 },
    ]);
    const bad = await fetch(`${url}/api/queues/q/messages?max=-1`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'INVALID_ARGUMENT' });
    const badBody = await fetch(`${url}/api/queues/q/redrive`, { method: 'POST', body: '{nope' });
    expect(badBody.status).toBe(400);
    const badField = await fetch(`${url}/api/queues/q/redrive`, { method: 'POST', body: '{"max":"x"}' });
    expect(await badField.json()).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('max'),
    });
    expect((await fetch(`${url}/api/nothing`)).status).toBe(404);
    expect((await fetch(`${url}/api/cluster`, { method: 'DELETE' })).status).toBe(404);
  });

  it('answers a badly encoded path and an oversize body with INVALID_ARGUMENT, then serves on', async () => {
    const calls: string[] = [];
    const url = await start({ api: fakeApi('n1', true, calls) });
    for (const path of ['/api/queues/%ZZ', '/api/queues/%E0%A4%A/messages']) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    const huge = await postRaw(url, '/api/queues/q/redrive', 'x'.repeat(1024 * 1024));
    expect(huge.status).toBe(400);
    expect(JSON.parse(huge.body)).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('body'),
    });
    expect(calls).toEqual([]);
    expect((await fetch(`${url}/health`)).status).toBe(200);
  });

  it('checks bearer tokens and permissions on the API only', async () => {
    const auth = TokenAuthenticator.fromJson({
      tokens: [
        { name: 'reader', token: 'reader-token', permissions: [{ queues: 'q', actions: ['consume'] }] },
        {
          name: 'admin',
          token: 'admin-token',
          permissions: [{ queues: '*', actions: ['manage', 'consume'] }],
        },
      ],
    });
    const url = await start({ api: fakeApi('n1', true, []), authenticate: (t) => auth.authenticate(t) });
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/api/cluster`)).status).toBe(401);
    const as = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
    expect((await fetch(`${url}/api/cluster`, as('reader-token'))).status).toBe(200);
    expect((await fetch(`${url}/api/queues/q/messages`, as('reader-token'))).status).toBe(200);
    const forbidden = await fetch(`${url}/api/queues/q/purge`, { method: 'POST', ...as('reader-token') });
    expect(forbidden.status).toBe(403);
    expect(await forbidden.json()).toMatchObject({ code: 'FORBIDDEN' });
    expect((await fetch(`${url}/api/queues/q/purge`, { method: 'POST', ...as('admin-token') })).status).toBe(
      200,
    );
  });

  it('shows a token only the queues it has any permission on, as the WebSocket ops do', async () => {
    const names = ['orders.eu', 'orders.us', 'emails', 'audit'];
    const api: HttpApi = {
      ...fakeApi('n1', true, []),
      queues: () => names.map((name) => ({ name, depth: 0 }) as QueueStats),
      queue: (name) => (names.includes(name) ? ({ name, depth: 0 } as QueueStats) : null),
      peek: (name) => (names.includes(name) ? [] : null),
    };
    const auth = TokenAuthenticator.fromJson({
      tokens: [
        {
          name: 'orders',
          token: 'orders-token',
          permissions: [{ queues: 'orders.*', actions: ['consume'] }],
        },
        { name: 'mailer', token: 'mailer-token', permissions: [{ queues: 'emails', actions: ['publish'] }] },
        { name: 'ops', token: 'manage-token', permissions: [{ queues: '*', actions: ['manage'] }] },
        { name: 'nobody', token: 'nobody-token', permissions: [] },
      ],
    });
    const url = await start({ api, authenticate: (t) => auth.authenticate(t) });
    const get = (path: string, token: string) =>
      fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    const listed = async (token: string) =>
      ((await (await get('/api/queues', token)).json()) as QueueStats[]).map((q) => q.name);
    expect(await listed('orders-token')).toEqual(['orders.eu', 'orders.us']);
    expect(await listed('mailer-token')).toEqual(['emails']);
    expect(await listed('manage-token')).toEqual(names);
    expect(await listed('nobody-token')).toEqual([]);
    // A queue the token may not see is refused before its existence is looked at (no probing).
    const hidden = await get('/api/queues/emails', 'orders-token');
    expect(hidden.status).toBe(403);
    expect(await hidden.json()).toMatchObject({ code: 'FORBIDDEN' });
    expect((await get('/api/queues/nope', 'orders-token')).status).toBe(403);
    expect((await get('/api/queues/orders.nope', 'orders-token')).status).toBe(404);
    expect((await get('/api/queues/emails', 'mailer-token')).status).toBe(200);
    // Peeking needs consume or manage (publish is not enough), as the WebSocket peek.
    expect((await get('/api/queues/emails/messages', 'mailer-token')).status).toBe(403);
    expect((await get('/api/queues/audit/messages', 'manage-token')).status).toBe(200);
    expect((await get('/api/queues/orders.eu/messages', 'orders-token')).status).toBe(200);
    // Without authentication every queue is visible (the dashboard of a development node).
    const open = await start({ api });
    const all = (await (await fetch(`${open}/api/queues`)).json()) as QueueStats[];
    expect(all.map((q) => q.name)).toEqual(names);
  });

  it('forwards mutations from a follower to the leader, once', async () => {
    const calls: string[] = [];
    const leader = await start({ api: fakeApi('n1', true, calls) });
    const follower = await start({ api: fakeApi('n2', false, calls, () => leader) });
    const res = await fetch(`${follower}/api/queues/dlq/redrive`, {
      method: 'POST',
      body: '{"target":"q","max":5}',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ moved: 2 });
    expect(calls).toEqual(['redrive dlq q 5 on n1']);
    // A follower that believes another follower leads does not forward in a loop.
    const confused = await start({ api: fakeApi('n3', false, calls, () => follower) });
    const looped = await fetch(`${confused}/api/cluster/members`, {
      method: 'POST',
      body: '{"id":"n4","address":"a:1"}',
    });
    expect(looped.status).toBe(503);
    expect(await looped.json()).toMatchObject({ code: 'NOT_LEADER' });
  });

  it('serves static files without escaping the directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-static-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'index.html'), '<h1>dash</h1>');
    const url = await start({
      api: fakeApi('n1', true, []),
      staticDir: `${dir}/` /* trailing slash, as the server passes it */,
    });
    const page = await fetch(`${url}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(await page.text()).toBe('<h1>dash</h1>');
    const escaped = await rawGet(url, '/../../etc/passwd');
    expect(escaped).toBe(404);
  });

  it('routes upgrades by path and refuses unknown paths', async () => {
    const seen: string[] = [];
    const url = await start({
      api: fakeApi('n1', true, []),
      upgrades: {
        '/client': (req, socket) => {
          seen.push(req.url ?? '');
          socket.end('HTTP/1.1 418 Teapot\r\n\r\n');
        },
      },
    });
    expect(await upgrade(url, '/client?x=1')).toContain('418');
    expect(await upgrade(url, '/other')).toContain('404');
    expect(seen).toEqual(['/client?x=1']);
  });
});

function rawGet(base: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function upgrade(base: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { headers: { connection: 'Upgrade', upgrade: 'websocket' } });
    req.on('response', (res) => resolve(String(res.statusCode)));
    req.on('upgrade', (res) => resolve(String(res.statusCode)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * POSTs `body` and resolves with the answer, even when the server answers before reading all of
 * the body and closes the connection (the rest of the upload then fails, which is expected).
 */
function postRaw(base: string, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request(`${base}${path}`, { method: 'POST' }, (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    req.end(body);
  });
}
