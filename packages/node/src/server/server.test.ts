/**
 * Proves the operator surface of a real node (startServer: storage, Raft, gateway, HTTP on
 * loopback) agrees with its client API: every per-queue gauge on `/metrics` equals the same-named
 * figure of the API's stats after publishes, deliveries and acks; the fsync and commit latency
 * histograms have observations after a publish; the per-queue publish/ack rates of `/api/queues`
 * turn positive while messages flow and fall back to 0 when the queue is idle; and over HTTP a
 * token sees exactly the queues the WebSocket `listQueues`/`queueStats` ops show it, with the
 * same error codes.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { QueueStats } from '@flotilla/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerConfig } from '../config/config.js';
import { bytes, TestClient } from '../gateway/testing/harness.js';
import { silentLogger } from '../runtime/logger.js';
import { startServer } from './server.js';
import type { RunningServer } from './types.js';

const ADMIN = 'admin-token-0001';
const TOKENS = {
  tokens: [
    {
      name: 'admin',
      token: ADMIN,
      permissions: [{ queues: '*', actions: ['manage', 'consume', 'publish'] }],
    },
    { name: 'ops', token: 'manage-token-01', permissions: [{ queues: '*', actions: ['manage'] }] },
    {
      name: 'orders',
      token: 'orders-reader-01',
      permissions: [{ queues: 'orders.*', actions: ['consume'] }],
    },
    { name: 'mailer', token: 'mail-publisher-1', permissions: [{ queues: 'emails', actions: ['publish'] }] },
    { name: 'nobody', token: 'no-permission-1', permissions: [] },
  ],
};

/** Poll an async probe until it returns true; fail with `what` after the deadline. */
async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Samples of one metric from Prometheus text, by their label string (e.g. `queue="jobs",node="n1"`). */
function metricValue(text: string, name: string, queue?: string): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (queue !== undefined && !line.includes(`queue="${queue}"`)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

describe('a running node', () => {
  let dir: string;
  let server: RunningServer;
  let admin: TestClient;

  const http = (path: string, token: string | null = ADMIN) =>
    fetch(`${server.httpUrl}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const stats = async (queue: string): Promise<QueueStats> => {
    const res = await http(`/api/queues/${queue}`);
    expect(res.status).toBe(200);
    return (await res.json()) as QueueStats;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'flotilla-server-'));
    const tokensFile = join(dir, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(TOKENS));
    const self = { host: '127.0.0.1', port: 0 };
    const config: ServerConfig = {
      nodeId: 'n1',
      dataDir: join(dir, 'n1'),
      listen: self,
      advertise: self,
      peers: new Map([['n1', self]]),
      clusterSecret: '',
      authTokens: tokensFile,
      join: false,
      logLevel: 'silent',
      tickMs: 10,
      electionTimeoutMs: 200,
      heartbeatMs: 50,
      snapshotLogBytes: 64 * 1024 * 1024,
      maxSessions: 100,
      maxSubscriptionsPerSession: 16,
    };
    // A short rate window keeps the idle decay within two seconds.
    server = await startServer(config, {
      logger: silentLogger,
      queueRates: { sampleMs: 50, windowMs: 2_000 },
    });
    await until(async () => server.status().role === 'leader', 'leadership');
    admin = await TestClient.connect(`${server.httpUrl.replace('http:', 'ws:')}/client`, ADMIN);
  });

  afterAll(async () => {
    admin?.close();
    await server?.stop('test over');
    rmSync(dir, { recursive: true, force: true });
  });

  it('exports per-queue gauges equal to the API figures, and latency histograms', async () => {
    await admin.ok('createQueue', { name: 'jobs', options: {} });
    const body = bytes('x'.repeat(100));
    await admin.ok('publish', {
      queue: 'jobs',
      messages: [{ body }, { body }, { body }, { body }, { body, delayMs: 60_000 }],
    });
    const leased = await admin.ok('receive', { queue: 'jobs', max: 2, waitMs: 0 });
    expect(leased).toHaveLength(2);
    await admin.ok('ack', {
      items: [{ queue: 'jobs', seq: leased[0]!.seq, deliveryId: leased[0]!.deliveryId }],
    });

    const before = await stats('jobs');
    const metrics = await (await http('/metrics', null)).text();
    const after = await stats('jobs');
    expect(after).toMatchObject({ depth: 4, ready: 2, inFlight: 1, delayed: 1 });
    for (const field of ['depth', 'ready', 'inFlight', 'delayed', 'totalBytes'] as const) {
      expect(before[field], field).toBe(after[field]);
    }
    expect(metricValue(metrics, 'flotilla_queue_depth', 'jobs')).toBe(after.depth);
    expect(metricValue(metrics, 'flotilla_queue_ready', 'jobs')).toBe(after.ready);
    expect(metricValue(metrics, 'flotilla_queue_in_flight', 'jobs')).toBe(after.inFlight);
    expect(metricValue(metrics, 'flotilla_queue_delayed', 'jobs')).toBe(after.delayed);
    expect(metricValue(metrics, 'flotilla_queue_bytes', 'jobs')).toBe(after.totalBytes);
    // The age moves with the clock: the scrape lies between the two API readings.
    const age = metricValue(metrics, 'flotilla_queue_oldest_age_ms', 'jobs');
    expect(age).toBeGreaterThanOrEqual(before.oldestMessageAgeMs!);
    expect(age).toBeLessThanOrEqual(after.oldestMessageAgeMs!);

    expect(metricValue(metrics, 'flotilla_storage_fsync_seconds_count')).toBeGreaterThan(0);
    expect(metricValue(metrics, 'flotilla_raft_commit_seconds_count')).toBeGreaterThan(0);
  });

  it('reports publish and ack rates that rise with traffic and fall to 0 when idle', async () => {
    await admin.ok('createQueue', { name: 'rated', options: {} });
    const idle = await stats('rated');
    expect(idle).toMatchObject({ publishRate: 0, ackRate: 0 });
    // The queue's first sample comes within one sampling period of its creation, so traffic goes on
    // until the rate shows it (a wait on a condition, with a deadline).
    let round = 0;
    await until(async () => {
      const messages = Array.from({ length: 5 }, (_, i) => ({ body: bytes(`m${round}-${i}`) }));
      round++;
      await admin.ok('publish', { queue: 'rated', messages });
      const leased = await admin.ok('receive', { queue: 'rated', max: 5, waitMs: 0 });
      await admin.ok('ack', {
        items: leased.map((m) => ({ queue: 'rated', seq: m.seq, deliveryId: m.deliveryId })),
      });
      const s = await stats('rated');
      return s.publishRate! > 0 && s.ackRate! > 0;
    }, 'positive publish and ack rates');
    const listed = (await (await http('/api/queues')).json()) as QueueStats[];
    expect(listed.find((q) => q.name === 'rated')?.publishRate).toBeGreaterThan(0);
    // The WebSocket ops answer with the same figures, rates included.
    const overWs = (await admin.ok('queueStats', { name: 'rated' })) as QueueStats;
    expect(overWs.publishRate).toBeGreaterThan(0);
    const listedWs = (await admin.ok('listQueues', {})) as QueueStats[];
    expect(listedWs.find((q) => q.name === 'rated')?.ackRate).toBeGreaterThan(0);
    await until(
      async () => {
        const s = await stats('rated');
        return s.publishRate === 0 && s.ackRate === 0;
      },
      'rates to decay to 0',
      10_000,
    );
  });

  it('shows each token over HTTP the queues the WebSocket ops show it', async () => {
    for (const name of ['orders.eu', 'orders.us', 'emails', 'audit']) {
      await admin.ok('createQueue', { name, options: {} });
    }
    const probes = ['orders.eu', 'emails', 'audit', 'orders.missing', 'missing'];
    for (const token of TOKENS.tokens.map((t) => t.token)) {
      const ws = await TestClient.connect(admin.ws.url, token);
      try {
        const wsNames = (await ws.ok('listQueues', {})).map((q) => q.name).sort();
        const res = await http('/api/queues', token);
        expect(res.status).toBe(200);
        const httpNames = ((await res.json()) as QueueStats[]).map((q) => q.name).sort();
        expect(httpNames, token).toEqual(wsNames);
        for (const queue of probes) {
          const reply = await ws.request('queueStats', { name: queue });
          const wsCode = reply.kind === 'error' ? reply.error.code : 'OK';
          const one = await http(`/api/queues/${queue}`, token);
          const httpCode = one.status === 200 ? 'OK' : ((await one.json()) as { code: string }).code;
          expect(httpCode, `${token} ${queue}`).toBe(wsCode);
        }
      } finally {
        ws.close();
      }
    }
    // Spot checks of what the rule means.
    const names = async (token: string) =>
      ((await (await http('/api/queues', token)).json()) as QueueStats[]).map((q) => q.name).sort();
    expect(await names('orders-reader-01')).toEqual(['orders.eu', 'orders.us']);
    expect(await names('mail-publisher-1')).toEqual(['emails']);
    expect(await names('no-permission-1')).toEqual([]);
    expect(await names('manage-token-01')).toContain('audit');
    expect((await http('/api/queues/emails', 'orders-reader-01')).status).toBe(403);
    expect((await http('/api/queues/orders.missing', 'orders-reader-01')).status).toBe(404);
  });
});
