/**
 * Proves failover without user code against a fake multi-node cluster whose advertised leader URLs
 * are unreachable: the SDK follows NOT_LEADER, welcomes and goingAway by node id to the URL the
 * user configured, finds a leader it has never seen among the URLs it has not identified, falls
 * back to the advertised URL only when it has no URL of its own, reconnects after drops, resends
 * unconfirmed publishes with the same idempotency keys (so nothing is stored twice), resubscribes
 * consumers, and reports it all through events and `status`. It learns the members' advertised
 * URLs and tries them after the user's URLs, never before, so a client whose configured nodes are
 * all gone still finds the leader.
 */

import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ClientEvents, WebSocketFactory, WebSocketLike } from './index.js';
import { FlotillaError } from './index.js';
import { connectTo, startCluster } from './testing/harness.js';
import { settle, waitFor } from './testing/wait.js';

/** A WebSocket factory that records every URL the SDK dials. */
function recordingWebSocket(): { webSocket: WebSocketFactory; dialed: string[] } {
  const dialed: string[] = [];
  const webSocket: WebSocketFactory = (url) => {
    dialed.push(url);
    return new WebSocket(url) as unknown as WebSocketLike;
  };
  return { webSocket, dialed };
}

const clientUrl = (base: string) => `${base}/client`;

/** A loopback URL nothing listens on. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `ws://127.0.0.1:${port}`;
}

describe('finding the leader', () => {
  it('follows the welcome of a follower to the user URL of the leader', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2', 'n3'], leaderId: 'n3' });
    // n1 answers first and names n3, whose advertised URL is unreachable.
    const { webSocket, dialed } = recordingWebSocket();
    const client = await connectTo(cluster, { webSocket });
    expect(client.nodeId).toBe('n3');
    // n2 is probed because n3's URL is not known yet; the advertised URL is never dialed.
    expect(dialed).toEqual(cluster.urls.map(clientUrl));
    expect(client.leaderId).toBe('n3');
    expect(client.knownNodes.get(`${cluster.node('n3').url}/client`)).toBe('n3');
    await client.createQueue('q');
    expect(cluster.requestsOf('createQueue')[0]!.nodeId).toBe('n3');
  });

  it('follows NOT_LEADER by node id to the configured URL, not the advertised one', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const { webSocket, dialed } = recordingWebSocket();
    const client = await connectTo([cluster.node('n2').url, cluster.node('n1').url], { webSocket });
    expect(client.nodeId).toBe('n1');
    await client.createQueue('q');
    dialed.length = 0;
    cluster.setLeader('n2');
    const receipt = await client.publish('q', 'after the move');
    expect(receipt.seq).toBe(1);
    const publishes = cluster.requestsOf('publish');
    expect(publishes.map((r) => r.nodeId)).toEqual(['n1', 'n2']);
    expect(client.nodeId).toBe('n2');
    expect(dialed).toEqual([clientUrl(cluster.node('n2').url)]);
  });

  it('probes configured URLs it has not identified to find a leader it has never seen', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2', 'n3'], leaderId: 'n1' });
    const { webSocket, dialed } = recordingWebSocket();
    const client = await connectTo(cluster, { webSocket });
    expect([...client.knownNodes.values()]).toEqual(['n1']);
    await client.createQueue('q');
    dialed.length = 0;
    cluster.setLeader('n3');
    await client.publish('q', 'x');
    expect(client.nodeId).toBe('n3');
    expect(dialed).toEqual([clientUrl(cluster.node('n2').url), clientUrl(cluster.node('n3').url)]);
    expect(cluster.requestsOf('publish').at(-1)!.nodeId).toBe('n3');
  });

  it('uses the advertised leader URL only when no configured URL belongs to the leader', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n2', advertise: 'real' });
    const { webSocket, dialed } = recordingWebSocket();
    const client = await connectTo([cluster.node('n1').url], { webSocket });
    expect(client.nodeId).toBe('n2');
    expect(client.knownNodes.size).toBe(1);
    expect(dialed).toEqual([clientUrl(cluster.node('n1').url), cluster.advertisedUrl('n2')]);
  });

  it('follows a welcome that names the leader at once, even after failed attempts', async () => {
    // A failure costs a backoff pause; a node naming the leader is no failure. (After a leader
    // dies, the dead node fails first: a pause before following the next node's directions
    // added up to a second to every failover.)
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n2' });
    const dials: { url: string; atMs: number }[] = [];
    const webSocket: WebSocketFactory = (url) => {
      dials.push({ url, atMs: Date.now() });
      return new WebSocket(url) as unknown as WebSocketLike;
    };
    const reconnectDelayMs = { initialMs: 600, maxMs: 600 }; // pauses of 300..600 ms
    const client = await connectTo([await deadUrl(), cluster.node('n1').url, cluster.node('n2').url], {
      webSocket,
      reconnectDelayMs,
    });
    expect(client.nodeId).toBe('n2');
    const afterN1 = dials.findIndex((d) => d.url === clientUrl(cluster.node('n1').url));
    expect(afterN1).toBeGreaterThan(0); // the dead URL came first and failed
    const next = dials[afterN1 + 1]!;
    expect(next.atMs - dials[afterN1]!.atMs).toBeLessThan(reconnectDelayMs.initialMs / 2);
  });

  it('asks the next node at once after waiting out "no leader known" on one', async () => {
    // The request's own pause is the wait; a second, connection-level pause only delayed
    // finding the leader an election had just made.
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: null });
    const dials: { url: string; atMs: number }[] = [];
    const webSocket: WebSocketFactory = (url) => {
      dials.push({ url, atMs: Date.now() });
      return new WebSocket(url) as unknown as WebSocketLike;
    };
    const reconnectDelayMs = { initialMs: 600, maxMs: 600 }; // pauses of 300..600 ms
    const client = await connectTo(cluster, { webSocket, reconnectDelayMs });
    const left: number[] = [];
    client.on('disconnected', () => left.push(Date.now()));
    const pending = client.createQueue('q');
    await waitFor(() => dials.length === 2, 'a second dial after leaving the first node', 5_000);
    expect(dials[1]!.atMs - left[0]!).toBeLessThan(reconnectDelayMs.initialMs / 2);
    cluster.setLeader('n2');
    await pending;
  });

  it('waits out an election (no leader known) and retries', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: null });
    const client = await connectTo(cluster);
    expect(client.leaderId).toBeNull();
    const pending = client.createQueue('q');
    await waitFor(() => cluster.requestsOf('createQueue').length >= 1, 'a first createQueue attempt');
    cluster.setLeader('n2');
    await pending;
    expect(cluster.requestsOf('createQueue').at(-1)!.nodeId).toBe('n2');
    expect(client.leaderId).toBe('n2');
  });

  it('moves to the leader named by a goingAway push', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const client = await connectTo(cluster);
    await client.createQueue('q');
    cluster.setLeader('n2', { goingAway: true });
    await waitFor(() => client.nodeId === 'n2', 'the client to move to n2');
    await client.publish('q', 1);
    expect(client.knownNodes.get(clientUrl(cluster.node('n2').url))).toBe('n2');
    expect(cluster.requestsOf('publish')[0]!.nodeId).toBe('n2');
  });
});

describe('reconnecting', () => {
  it('resends unconfirmed publishes with the same idempotency keys and stores each once', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const client = await connectTo(cluster);
    await client.createQueue('q');
    // The leader stores the batch but the confirm is lost with the connection.
    cluster.interceptor = ({ request }) => (request.op === 'publish' ? { kind: 'hold' } : undefined);
    const pending = Array.from({ length: 5 }, (_, i) => client.publish('q', `m${i}`));
    await waitFor(() => cluster.requestsOf('publish').length === 1, 'the publish frame');
    cluster.interceptor = null;
    cluster.dropConnections();
    const receipts = await Promise.all(pending);
    const [sent, resent] = cluster
      .requestsOf('publish')
      .map((r) => r.request.params.messages.map((m) => m.idempotencyKey));
    expect(resent).toEqual(sent);
    expect(receipts.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(receipts.every((r) => r.duplicate)).toBe(true);
    expect(cluster.broker.stats('q').depth).toBe(5);
  });

  it('resends to the new leader after a failover while the old one is unreachable', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const client = await connectTo(cluster);
    await client.createQueue('q');
    cluster.interceptor = ({ request }) => (request.op === 'publish' ? { kind: 'ignore' } : undefined);
    const pending = client.publish('q', 'x', { idempotencyKey: 'only-once' });
    await waitFor(() => cluster.requestsOf('publish').length === 1, 'the first attempt');
    cluster.interceptor = null;
    await cluster.node('n1').stop();
    cluster.setLeader('n2');
    const receipt = await pending;
    expect(receipt.duplicate).toBe(false);
    expect(cluster.requestsOf('publish').map((r) => r.nodeId)).toEqual(['n1', 'n2']);
    expect(cluster.broker.stats('q').depth).toBe(1);
  });

  it('resubscribes consumers after the connection drops', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const seen: string[] = [];
    await client.consume<string>('q', (message) => {
      seen.push(message.body);
    });
    await client.publish('q', 'before');
    await waitFor(() => cluster.broker.stats('q').ackedCount === 1, 'the first delivery to be acked');
    cluster.dropConnections();
    await waitFor(() => cluster.requestsOf('subscribe').length === 2, 'a second subscribe');
    await client.publish('q', 'after');
    await waitFor(() => seen.length === 2, 'a delivery on the new subscription');
    expect(seen).toEqual(['before', 'after']);
  });

  it('emits disconnected, connected and leaderChanged, and reports status', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const client = await connectTo(cluster);
    expect(client.status).toBe('connected');
    const events: string[] = [];
    const record =
      <K extends keyof ClientEvents>(name: K) =>
      (payload: ClientEvents[K]) =>
        events.push(
          `${name}:${'nodeId' in payload ? payload.nodeId : (payload as { leaderId: string }).leaderId}`,
        );
    client.on('disconnected', record('disconnected'));
    client.on('connected', record('connected'));
    client.on('leaderChanged', record('leaderChanged'));
    cluster.setLeader('n2', { goingAway: true });
    await waitFor(() => client.nodeId === 'n2', 'the move to n2');
    expect(events).toEqual(['leaderChanged:n2', 'disconnected:n1', 'connected:n2']);
    expect(client.status).toBe('connected');
  });

  it('keeps trying with backoff while no server answers, then recovers', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const port = cluster.nodes[0]!.port;
    await cluster.nodes[0]!.stop();
    await waitFor(() => client.status === 'reconnecting', 'the client to notice');
    const pending = client.publish('q', 'queued while down');
    await cluster.nodes[0]!.listen(port);
    const receipt = await pending;
    expect(receipt.seq).toBe(1);
    expect(client.status).toBe('connected');
  });
});

describe('retries', () => {
  it('retries UNAVAILABLE and OVERLOADED (nothing applied) until the request succeeds', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    let refusals = 2;
    cluster.interceptor = ({ request }) => {
      if (request.op !== 'createQueue' || refusals === 0) return undefined;
      refusals--;
      const code = refusals === 1 ? 'UNAVAILABLE' : 'OVERLOADED';
      return { kind: 'error', error: new FlotillaError(code, 'busy') };
    };
    await client.createQueue('q');
    expect(cluster.requestsOf('createQueue')).toHaveLength(3);
  });

  it('does not repeat a request that may have been applied unless it is idempotent', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    cluster.interceptor = ({ request }) => (request.op === 'createQueue' ? { kind: 'drop' } : undefined);
    const outcome = await settle(client.createQueue('q'));
    const error = (outcome as { error: FlotillaError }).error;
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.maybeApplied).toBe(true);
    expect(cluster.requestsOf('createQueue')).toHaveLength(1);
  });

  it('repeats an idempotent read after a lost connection', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    let drops = 1;
    cluster.interceptor = ({ request }) =>
      request.op === 'queueStats' && drops-- > 0 ? { kind: 'drop' } : undefined;
    const stats = await client.queueStats('q');
    expect(stats.name).toBe('q');
    expect(cluster.requestsOf('queueStats')).toHaveLength(2);
  });
});

describe('learning the members', () => {
  it('finds the leader through the members it learned when every configured node is gone', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2', 'n3'], leaderId: 'n1', advertise: 'real' });
    const { webSocket, dialed } = recordingWebSocket();
    const client = await connectTo([cluster.node('n1').url], { webSocket });
    await client.createQueue('q');
    await waitFor(() => client.memberUrls.size === 3, 'the members from the cluster answer');
    expect(client.memberUrls.get('n2')).toBe(cluster.advertisedUrl('n2'));
    dialed.length = 0;
    await cluster.node('n1').stop();
    cluster.setLeader('n2');
    const receipt = await client.publish('q', 'after n1 left');
    expect(receipt.seq).toBe(1);
    expect(client.nodeId).toBe('n2');
    // The configured URL was tried before any learned one.
    expect(dialed[0]).toBe(clientUrl(cluster.node('n1').url));
    expect(
      dialed.some((url) => url === cluster.advertisedUrl('n2') || url === cluster.advertisedUrl('n3')),
    ).toBe(true);
  });

  it('tries the configured URLs before the learned ones, in every round', async () => {
    // Advertised URLs here are unreachable (as behind port mapping): the user's URL must win.
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1' });
    const { webSocket, dialed } = recordingWebSocket();
    const client = await connectTo([cluster.node('n1').url, cluster.node('n2').url], { webSocket });
    await client.createQueue('q');
    await waitFor(() => client.memberUrls.size === 2, 'the members from the cluster answer');
    dialed.length = 0;
    await cluster.node('n1').stop();
    cluster.setLeader('n2');
    await client.publish('q', 'x');
    expect(client.nodeId).toBe('n2');
    const configured = cluster.urls.map(clientUrl);
    const reachedN2 = dialed.indexOf(clientUrl(cluster.node('n2').url));
    expect(reachedN2).toBeGreaterThanOrEqual(0);
    expect(dialed.slice(0, reachedN2 + 1).every((url) => configured.includes(url))).toBe(true);
  });

  it('forgets removed members at the next cluster answer', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n1', advertise: 'real' });
    const client = await connectTo([cluster.node('n1').url]);
    const info = await client.cluster();
    expect([...client.memberUrls.keys()].sort()).toEqual(['n1', 'n2']);
    cluster.interceptor = ({ request }) => {
      if (request.op !== 'cluster') return undefined;
      const only = { ...info, nodes: info.nodes.filter((node) => node.id === 'n1') };
      return { kind: 'reply', result: only };
    };
    await client.cluster();
    expect([...client.memberUrls.keys()]).toEqual(['n1']);
  });
});
