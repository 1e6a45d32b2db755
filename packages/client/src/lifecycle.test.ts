/**
 * Proves the client's life cycle and error surface against the fake cluster: connecting (and
 * failing to, with UNAVAILABLE or UNAUTHORIZED), deadlines that end in TIMEOUT, close() draining
 * handlers and unconfirmed publishes (or failing them with CLOSED when told not to drain), the
 * `closed()` promise, and broken frames from a server that are reported without crashing.
 */

import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { connect, FlotillaError } from './index.js';
import { connectTo, FAST_RECONNECT, startCluster } from './testing/harness.js';
import { settle, waitFor, within } from './testing/wait.js';

function errorOf(outcome: { ok: true; value: unknown } | { ok: false; error: unknown }): FlotillaError {
  if (outcome.ok) throw new Error(`expected a failure, got ${JSON.stringify(outcome.value)}`);
  const error = outcome.error;
  expect(error).toBeInstanceOf(FlotillaError);
  return error as FlotillaError;
}

describe('connect', () => {
  it('rejects with UNAVAILABLE when no server answers within connectTimeoutMs', async () => {
    const cluster = await startCluster();
    const url = cluster.urls[0]!;
    await cluster.nodes[0]!.stop();
    const outcome = await settle(
      connect({ servers: [url], connectTimeoutMs: 200, reconnectDelayMs: FAST_RECONNECT }),
    );
    const error = errorOf(outcome);
    expect(error.code).toBe('UNAVAILABLE');
    expect(error.message).toContain(url);
  });

  it('rejects at once with UNAUTHORIZED for a bad token and connects with a good one', async () => {
    const cluster = await startCluster({ tokens: ['s3cret'] });
    const outcome = await settle(
      within(connect({ servers: cluster.urls, token: 'wrong' }), 2_000, 'connect'),
    );
    expect(errorOf(outcome).code).toBe('UNAUTHORIZED');
    const client = await connectTo(cluster, { token: 's3cret', name: 'billing-worker' });
    expect(client.status).toBe('connected');
  });

  it('gives up on a node that never answers hello and closes its sockets', async () => {
    const silent = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/client' });
    await new Promise((resolve) => silent.once('listening', resolve));
    const url = `ws://127.0.0.1:${(silent.address() as { port: number }).port}`;
    try {
      const outcome = await settle(
        connect({
          servers: [url],
          helloTimeoutMs: 50,
          connectTimeoutMs: 300,
          reconnectDelayMs: FAST_RECONNECT,
        }),
      );
      const error = errorOf(outcome);
      expect(error.code).toBe('UNAVAILABLE');
      expect((error.cause as FlotillaError).code).toBe('TIMEOUT');
      await waitFor(() => silent.clients.size === 0, 'every abandoned socket to be closed');
    } finally {
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('refuses bad options with INVALID_ARGUMENT', async () => {
    await expect(connect({ servers: [] })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'servers',
    });
    await expect(connect({ servers: ['ftp://x'] })).rejects.toMatchObject({ field: 'servers[0]' });
    await expect(connect({ servers: ['ws://x'], requestTimeoutMs: 0 })).rejects.toMatchObject({
      field: 'requestTimeoutMs',
    });
  });

  it('closes with UNAUTHORIZED when a reconnect is refused, failing what is pending', async () => {
    const cluster = await startCluster({ tokens: ['s3cret'] });
    const client = await connectTo(cluster, { token: 's3cret' });
    await client.createQueue('q');
    cluster.tokens = ['rotated'];
    cluster.dropConnections();
    const error = errorOf(await settle(client.publish('q', 'x')));
    // A publish that went out on the dropped connection may have been stored: it then says so
    // (CONNECTION_LOST) with UNAUTHORIZED as the cause. One sent after the drop gets UNAUTHORIZED.
    if (error.code === 'UNAUTHORIZED') expect(error.details.attempts).toBeUndefined();
    else expect(error).toMatchObject({ code: 'CONNECTION_LOST', cause: { code: 'UNAUTHORIZED' } });
    const reason = await client.closed();
    expect(reason?.code).toBe('UNAUTHORIZED');
    expect(client.status).toBe('closed');
  });
});

describe('deadlines', () => {
  it('rejects with TIMEOUT (maybe applied) when the server never answers', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { requestTimeoutMs: 150 });
    await client.createQueue('q');
    cluster.interceptor = ({ request }) => (request.op === 'publish' ? { kind: 'ignore' } : undefined);
    const error = errorOf(await settle(client.publish('q', 'x')));
    expect(error.code).toBe('TIMEOUT');
    expect(error.maybeApplied).toBe(true);
    expect(error.details.sent).toBe(true);
    cluster.interceptor = null;
    // The unconfirmed slot was given back: the next publish goes through.
    expect((await client.publish('q', 'y')).seq).toBe(1);
  });

  it('rejects with TIMEOUT when no connection comes back in time', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { requestTimeoutMs: 150 });
    await cluster.nodes[0]!.stop();
    await waitFor(() => client.status === 'reconnecting', 'the client to notice');
    const error = errorOf(await settle(client.queueStats('q')));
    expect(error.code).toBe('TIMEOUT');
    expect(error.details.sent).toBe(false);
  });
});

describe('close', () => {
  it('waits for handlers in progress and unconfirmed publishes, then closes', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.createQueue('out');
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    await client.consume('q', async (message) => {
      await gate;
      await client.publish('out', message.body);
    });
    await client.publish('q', 'job');
    await waitFor(() => cluster.broker.stats('q').inFlight === 1, 'the handler to start');
    cluster.interceptor = ({ request }) => (request.op === 'publish' ? { kind: 'hold' } : undefined);
    let closed = false;
    const closing = client.close().then(() => {
      closed = true;
    });
    expect(client.status).toBe('draining');
    release();
    await waitFor(() => cluster.heldCount === 1, "the handler's publish");
    expect(closed).toBe(false);
    cluster.releaseHeld();
    await closing;
    expect(cluster.broker.stats('out').depth).toBe(1);
    expect(cluster.broker.stats('q').ackedCount).toBe(1);
    expect(client.status).toBe('closed');
    expect(await client.closed()).toBeNull();
  });

  it('fails pending work with CLOSED when told not to drain', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    cluster.interceptor = ({ request }) => (request.op === 'publish' ? { kind: 'ignore' } : undefined);
    const pending = settle(client.publish('q', 'x'));
    await waitFor(() => cluster.requestsOf('publish').length === 1, 'the publish to be sent');
    await client.close({ drain: false });
    const error = errorOf(await pending);
    expect(error.code).toBe('CLOSED');
    expect(error.maybeApplied).toBe(true);
  });

  it('refuses new work once closed', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.close();
    await expect(client.publish('q', 1)).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(client.consume('q', () => {})).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(client.queueStats('q')).rejects.toMatchObject({ code: 'CLOSED' });
    await waitFor(() => cluster.sessionCount === 0, 'the server to see the socket closed');
  });
});

describe('hostile server input', () => {
  it('reports an unreadable frame as an error event and reconnects', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    const errors: FlotillaError[] = [];
    client.on('error', (error) => errors.push(error));
    const connections: string[] = [];
    client.on('connected', ({ nodeId }) => connections.push(nodeId));
    cluster.sendRaw(new Uint8Array([0x93, 0x07, 0xc1, 0xff]));
    await waitFor(() => connections.length === 1, 'the reconnect');
    expect(errors[0]!.code).toBe('PROTOCOL_ERROR');
    await client.createQueue('q');
  });
});
