/**
 * Proves `flotilla status`: node views from `GET /api/cluster` (first-hand for nodes that answer,
 * from the leader's member list for those that do not), lag against the leader, the fallback to
 * one node's view through the SDK, the table, and the exit codes (0 leader, 1 none).
 */

import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { runIn, testContext } from '../testing/context.js';
import {
  type ApiClusterStatus,
  apiClusterUrl,
  renderStatus,
  statusExitCode,
  statusFromClusterInfo,
  statusFromHttp,
} from './status.js';

const members = [
  { id: 'n1', address: '10.0.0.1:7400', voter: true, matchIndex: 120, connected: true },
  { id: 'n2', address: '10.0.0.2:7400', voter: true, matchIndex: 100, connected: true },
  { id: 'n3', address: '10.0.0.3:7400', voter: true, matchIndex: 90, connected: false },
];

function nodeStatus(overrides: Partial<ApiClusterStatus>): ApiClusterStatus {
  return {
    nodeId: 'n1',
    role: 'leader',
    term: 4,
    leaderId: 'n1',
    leaderAddress: '10.0.0.1:7400',
    commitIndex: 120,
    appliedIndex: 120,
    lastIndex: 120,
    snapshotIndex: 0,
    members,
    ...overrides,
  };
}

describe('apiClusterUrl', () => {
  it('turns a client URL into the HTTP API URL on the same port', () => {
    expect(apiClusterUrl('ws://127.0.0.1:7401/client')).toBe('http://127.0.0.1:7401/api/cluster');
    expect(apiClusterUrl('wss://broker.example/client?x=1')).toBe('https://broker.example/api/cluster');
  });
});

describe('statusFromHttp', () => {
  it('shows answering nodes first-hand and the others from the leader members, with lag', () => {
    const view = statusFromHttp([
      { url: 'http://a:1/api/cluster', status: nodeStatus({}) },
      {
        url: 'http://b:2/api/cluster',
        status: nodeStatus({
          nodeId: 'n2',
          role: 'follower',
          commitIndex: 118,
          appliedIndex: 110,
          members: [],
        }),
      },
      { url: 'http://c:3/api/cluster', error: 'ECONNREFUSED' },
    ]);
    expect(view.leaderId).toBe('n1');
    expect(view.term).toBe(4);
    expect(view.nodes.map((n) => [n.id, n.role, n.reachable, n.appliedIndex, n.lag, n.address])).toEqual([
      ['n1', 'leader', true, 120, 0, 'a:1'],
      ['n2', 'follower', true, 110, 10, 'b:2'],
      ['n3', 'voter', false, null, 30, '10.0.0.3:7400'],
      ['?', 'unknown', false, null, null, 'c:3'],
    ]);
    expect(view.nodes[2]!.error).toBe('not connected to the leader');
    expect(view.nodes[3]!.error).toBe('ECONNREFUSED');
  });

  it('trusts the highest term for the leader and leaves lag unknown when the leader did not answer', () => {
    const view = statusFromHttp([
      {
        url: 'http://b:2/api/cluster',
        status: nodeStatus({ nodeId: 'n2', role: 'follower', term: 3, leaderId: 'n3' }),
      },
      {
        url: 'http://c:3/api/cluster',
        status: nodeStatus({ nodeId: 'n3', role: 'follower', term: 5, leaderId: 'n1' }),
      },
    ]);
    expect(view).toMatchObject({ leaderId: 'n1', term: 5 });
    expect(view.nodes.filter((n) => n.reachable).map((n) => n.lag)).toEqual([null, null]);
  });

  it('reports no leader during an election', () => {
    const view = statusFromHttp([
      {
        url: 'http://a:1/api/cluster',
        status: nodeStatus({ role: 'candidate', leaderId: null, leaderAddress: null }),
      },
    ]);
    expect(view.leaderId).toBeNull();
    expect(statusExitCode(view)).toBe(1);
    expect(renderStatus(view).split('\n')[0]).toBe('no leader, term 4');
  });
});

describe('statusFromClusterInfo', () => {
  it('shows one node view: its own indexes, the others by match index', () => {
    const view = statusFromClusterInfo({
      nodeId: 'n2',
      leaderId: 'n2',
      term: 7,
      commitIndex: 50,
      appliedIndex: 48,
      nodes: [
        { id: 'n1', url: 'ws://a/client', role: 'follower', reachable: true, matchIndex: 45 },
        { id: 'n2', url: 'ws://b/client', role: 'leader', reachable: true, matchIndex: null },
        { id: 'n3', url: null, role: 'follower', reachable: false, matchIndex: null },
      ],
    });
    expect(view.source).toBe('client');
    expect(view.nodes.map((n) => [n.id, n.term, n.appliedIndex, n.lag, n.reachable])).toEqual([
      ['n1', null, null, 5, true],
      ['n2', 7, 48, 2, true],
      ['n3', null, null, null, false],
    ]);
    expect(statusExitCode(view)).toBe(0);
    const text = renderStatus(view);
    expect(text.split('\n')[0]).toBe("leader n2, term 7 (one node's view, via the client port)");
    expect(text).toMatch(/│ n2 \* │ leader\s+│ 7\s+│ 50\s+│ 48\s+│ 2\s+│/);
  });
});

describe('flotilla status over HTTP', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
  });

  const authorizations: (string | undefined)[] = [];

  async function serve(status: ApiClusterStatus): Promise<number> {
    const server = createServer((req, res) => {
      authorizations.push(req.headers.authorization);
      if (req.url !== '/api/cluster') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(status));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as { port: number }).port;
  }

  it('asks each node and prints one row per node, exit 0 with a leader', async () => {
    const p1 = await serve(nodeStatus({}));
    const p2 = await serve(nodeStatus({ nodeId: 'n2', role: 'follower', appliedIndex: 119 }));
    const ctx = testContext({
      env: { FLOTILLA_SERVERS: `127.0.0.1:${p1},127.0.0.1:${p2}`, FLOTILLA_TOKEN: 't0k' },
    });
    const result = await runIn(ctx, ['status', '--json']);
    expect(result.code).toBe(0);
    const view = JSON.parse(result.stdout) as ReturnType<typeof statusFromHttp>;
    expect(view.source).toBe('http');
    expect(view.nodes.map((n) => [n.id, n.reachable, n.lag])).toEqual([
      ['n1', true, 0],
      ['n2', true, 1],
      ['n3', false, 30],
    ]);
    expect(authorizations).toEqual(['Bearer t0k', 'Bearer t0k']);
  });
});
