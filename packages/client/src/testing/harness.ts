/**
 * Test set-up shared by the SDK's test files: start a fake cluster, connect clients to it with
 * fast reconnects, and tear everything down after each test.
 */

import { afterEach } from 'vitest';
import { connect, type FlotillaClient } from '../client.js';
import type { ConnectOptions } from '../options.js';
import { FakeCluster, type FakeClusterOptions } from './fake-server.js';

/** Reconnect quickly in tests: the backoff shape is tested on its own. */
export const FAST_RECONNECT = { initialMs: 5, maxMs: 40 } as const;

const clusters: FakeCluster[] = [];
const clients: FlotillaClient[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close({ drain: false })));
  await Promise.all(clusters.splice(0).map((cluster) => cluster.stop()));
});

/** Starts a fake cluster that is stopped after the test. */
export async function startCluster(options: FakeClusterOptions = {}): Promise<FakeCluster> {
  const cluster = await FakeCluster.start(options);
  clusters.push(cluster);
  return cluster;
}

/** Connects a client (closed after the test) to `servers`, or to every node of `cluster`. */
export async function connectTo(
  target: FakeCluster | string[],
  options: Partial<ConnectOptions> = {},
): Promise<FlotillaClient> {
  const servers = Array.isArray(target) ? target : target.urls;
  const client = await connect({ servers, reconnectDelayMs: FAST_RECONNECT, ...options });
  clients.push(client);
  return client;
}
