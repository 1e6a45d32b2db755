/**
 * Proves that the SDK notices a node that stops answering without closing its connections (a
 * paused process, here a frozen fake node): an idle connection probes the node with a `cluster`
 * request after heartbeatIntervalMs of silence and drops the connection (CONNECTION_LOST,
 * `details.unresponsive`) when heartbeatTimeoutMs more pass with nothing heard; requests in flight
 * then fail as of unknown outcome, idempotent ones are retried on the new leader long before
 * their deadline, and the search for the leader avoids the silent node (no hello timeout spent on
 * it, no following other nodes' stale word that it leads). A node that answers keeps its
 * connection however long it is idle.
 */

import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { FlotillaError, WebSocketFactory, WebSocketLike } from './index.js';
import { connectTo, startCluster } from './testing/harness.js';
import { settle, waitFor, within } from './testing/wait.js';

/** Fast heartbeats for tests; the request deadline is left far longer so only liveness can help. */
const HEARTBEAT = { heartbeatIntervalMs: 60, heartbeatTimeoutMs: 60, requestTimeoutMs: 20_000 } as const;

function recordingWebSocket(): { webSocket: WebSocketFactory; dialed: string[] } {
  const dialed: string[] = [];
  const webSocket: WebSocketFactory = (url) => {
    dialed.push(url);
    return new WebSocket(url) as unknown as WebSocketLike;
  };
  return { webSocket, dialed };
}

describe('liveness', () => {
  it('probes an idle connection and keeps it while the node answers', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, HEARTBEAT);
    const disconnects: FlotillaError[] = [];
    client.on('disconnected', ({ error }) => disconnects.push(error));
    // One cluster request learns the members after connecting; the rest are probes.
    await waitFor(() => cluster.requestsOf('cluster').length >= 4, 'three probes of the idle connection');
    expect(disconnects).toEqual([]);
    expect(client.status).toBe('connected');
    expect(cluster.sessionCount).toBe(1);
  });

  it('keeps a connection whose answer arrived while this process was busy past the timeout', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, HEARTBEAT);
    const disconnects: FlotillaError[] = [];
    client.on('disconnected', ({ error }) => disconnects.push(error));
    let stalls = 0;
    cluster.interceptor = ({ request }) => {
      if (request.op === 'cluster' && stalls < 3) {
        stalls++;
        // Served as usual; then the whole process stalls for several timeouts before the client
        // has read the answer (client and fake node share this event loop).
        queueMicrotask(() => {
          const until = performance.now() + 5 * HEARTBEAT.heartbeatTimeoutMs;
          while (performance.now() < until) {
            // busy: the event loop is blocked
          }
        });
      }
      return undefined;
    };
    await waitFor(
      () => stalls === 3 && cluster.requestsOf('cluster').length >= 5,
      'three stalls and later probes',
    );
    expect(disconnects).toEqual([]);
    expect(client.status).toBe('connected');
  });

  it('drops the connection of a frozen node and says why', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, HEARTBEAT);
    const disconnected = new Promise<FlotillaError>((resolve) =>
      client.once('disconnected', ({ error }) => resolve(error)),
    );
    cluster.nodes[0]!.frozen = true;
    const error = await within(disconnected, 5_000, 'the frozen node to be noticed');
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.details.unresponsive).toBe(true);
    expect(client.status).toBe('reconnecting');
  });

  it('retries a publish held by a frozen leader on the new leader, well before its deadline', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const client = await connectTo(cluster, HEARTBEAT);
    await client.createQueue('q');
    const pending = client.publish('q', 'x', { idempotencyKey: 'once' });
    cluster.node('n1').frozen = true;
    cluster.setLeader('n2');
    const receipt = await within(pending, 5_000, 'the publish to reach the new leader');
    expect(receipt.duplicate).toBe(false);
    expect(client.nodeId).toBe('n2');
    expect(cluster.broker.stats('q').depth).toBe(1);
  });

  it('fails a non-idempotent request in flight on a frozen leader as of unknown outcome', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const client = await connectTo(cluster, HEARTBEAT);
    cluster.interceptor = ({ request }) => {
      if (request.op === 'createQueue') cluster.node('n1').frozen = true; // applied, answer never sent
      return undefined;
    };
    const outcome = await within(settle(client.createQueue('q')), 5_000, 'createQueue to fail');
    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: FlotillaError }).error;
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.maybeApplied).toBe(true);
    expect(cluster.broker.listQueues().map((q) => q.name)).toEqual(['q']);
  });

  it('avoids the frozen node while looking for the new leader, even when others still name it', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2', 'n3'], leaderId: 'n1' });
    const { webSocket, dialed } = recordingWebSocket();
    const client = await connectTo(cluster, { ...HEARTBEAT, webSocket });
    await client.createQueue('q');
    const n1 = `${cluster.node('n1').url}/client`;
    dialed.length = 0;
    cluster.node('n1').frozen = true;
    // Before the election the other nodes still name n1 as the leader.
    await waitFor(() => dialed.length >= 2, 'the client to ask the other nodes', 5_000);
    cluster.setLeader('n3');
    await within(client.publish('q', 'x'), 5_000, 'the publish on the new leader');
    expect(client.nodeId).toBe('n3');
    expect(dialed).not.toContain(n1);
  });
});
