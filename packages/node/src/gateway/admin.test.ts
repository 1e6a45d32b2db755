/**
 * Proves every admin and read op over real WebSockets: createQueue answers the full options and
 * QUEUE_EXISTS for a taken name, updateQueue merges and refuses immutable options, list/stats
 * report what was published, peek shows messages without leasing them, purge and delete remove
 * them, redrive moves dead letters back, and cluster works on any node.
 */
import { DEFAULT_QUEUE_OPTIONS } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalLog } from '../broker/testing/local-log.js';
import { bytes, startBroker, type TestBroker, TestClient, text } from './testing/harness.js';

const brokers: TestBroker[] = [];
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
});

async function connected(log?: LocalLog) {
  const broker = await startBroker({ log });
  brokers.push(broker);
  return { broker, client: await TestClient.connect(broker.url) };
}

describe('queue admin', () => {
  it('creates a queue with defaults filled in and refuses a taken name', async () => {
    const { client } = await connected();
    const options = await client.ok('createQueue', {
      name: 'emails',
      options: { maxDeliveries: 5, retry: { backoff: 'exponential', delayMs: 100, maxDelayMs: 1000 } },
    });
    expect(options).toEqual({
      ...DEFAULT_QUEUE_OPTIONS,
      maxDeliveries: 5,
      retry: { backoff: 'exponential', delayMs: 100, maxDelayMs: 1000 },
    });
    expect((await client.error('createQueue', { name: 'emails', options: {} })).error.code).toBe(
      'QUEUE_EXISTS',
    );
    expect(
      (await client.error('createQueue', { name: 'x', options: { deadLetterQueue: 'nope' } })).error.code,
    ).toBe('QUEUE_NOT_FOUND');
    const bad = await client.error('createQueue', { name: 'y', options: { visibilityTimeoutMs: 0 } });
    expect(bad.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'options.visibilityTimeoutMs' });
  });

  it('updates options by merging and refuses immutable ones', async () => {
    const { client } = await connected();
    await client.ok('createQueue', { name: 'q', options: { priorityLevels: 3 } });
    const updated = await client.ok('updateQueue', {
      name: 'q',
      options: { maxMessages: 10, retry: { delayMs: 5 } },
    });
    expect(updated).toMatchObject({
      maxMessages: 10,
      priorityLevels: 3,
      retry: { backoff: 'fixed', delayMs: 5 },
    });
    const refused = await client.error('updateQueue', { name: 'q', options: { priorityLevels: 5 } });
    expect(refused.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'options.priorityLevels' });
    expect((await client.error('updateQueue', { name: 'nope', options: {} })).error.code).toBe(
      'QUEUE_NOT_FOUND',
    );
  });

  it('lists queues with stats, and queueStats counts what happened', async () => {
    const { client } = await connected();
    await client.ok('createQueue', { name: 'b', options: {} });
    await client.ok('createQueue', { name: 'a', options: {} });
    await client.ok('publish', { queue: 'a', messages: [{ body: bytes('one') }, { body: bytes('two') }] });
    const got = await client.ok('receive', { queue: 'a', max: 1, waitMs: 0 });
    await client.ok('ack', { items: [{ queue: 'a', seq: got[0]!.seq, deliveryId: got[0]!.deliveryId }] });
    const list = await client.ok('listQueues', {});
    expect(list.map((s) => s.name)).toEqual(['a', 'b']);
    const stats = await client.ok('queueStats', { name: 'a' });
    expect(stats).toMatchObject({
      name: 'a',
      depth: 1,
      ready: 1,
      inFlight: 0,
      delayed: 0,
      totalBytes: 3,
      publishedCount: 2,
      deliveredCount: 1,
      ackedCount: 1,
      deadLetteredCount: 0,
      options: DEFAULT_QUEUE_OPTIONS,
    });
    expect(stats.oldestMessageAgeMs).toBeGreaterThanOrEqual(0);
    expect((await client.ok('queueStats', { name: 'b' })).oldestMessageAgeMs).toBeNull();
    expect((await client.error('queueStats', { name: 'c' })).error.code).toBe('QUEUE_NOT_FOUND');
  });

  it('peeks without leasing, from a seq on', async () => {
    const { client } = await connected();
    await client.ok('createQueue', { name: 'q', options: {} });
    await client.ok('publish', {
      queue: 'q',
      messages: [
        { body: bytes('a') },
        { body: bytes('b'), format: 1, headers: { k: 'v' } },
        { body: bytes('c') },
      ],
    });
    const leased = await client.ok('receive', { queue: 'q', max: 1, waitMs: 0 });
    const peeked = await client.ok('peek', { queue: 'q', max: 2, fromSeq: 1 });
    expect(peeked.map((m) => [m.seq, text(m.body), m.deliveryId, m.queue])).toEqual([
      [1, 'a', 0, 'q'],
      [2, 'b', 0, 'q'],
    ]);
    expect(peeked[0]!.leaseDeadlineMs).toBe(leased[0]!.leaseDeadlineMs);
    expect(peeked[1]).toMatchObject({ format: 1, headers: { k: 'v' }, leaseDeadlineMs: 0, deliveryCount: 0 });
    expect((await client.ok('queueStats', { name: 'q' })).inFlight).toBe(1);
    expect((await client.error('peek', { queue: 'nope', max: 1 })).error.code).toBe('QUEUE_NOT_FOUND');
  });

  it('purges ready messages and deletes queues', async () => {
    const { client } = await connected();
    await client.ok('createQueue', { name: 'q', options: {} });
    await client.ok('publish', { queue: 'q', messages: [{ body: bytes('a') }, { body: bytes('b') }] });
    expect(await client.ok('purgeQueue', { name: 'q' })).toBe(2);
    expect(await client.ok('deleteQueue', { name: 'q' })).toBeNull();
    expect((await client.error('deleteQueue', { name: 'q' })).error.code).toBe('QUEUE_NOT_FOUND');
    expect((await client.error('publish', { queue: 'q', messages: [{ body: bytes('x') }] })).error.code).toBe(
      'QUEUE_NOT_FOUND',
    );
  });

  it('redrives dead letters back to their queue', async () => {
    const { client } = await connected();
    await client.ok('createQueue', { name: 'dlq', options: {} });
    await client.ok('createQueue', { name: 'jobs', options: { maxDeliveries: 1, deadLetterQueue: 'dlq' } });
    await client.ok('publish', { queue: 'jobs', messages: [{ body: bytes('poison') }] });
    const [m] = await client.ok('receive', { queue: 'jobs', max: 1, waitMs: 0 });
    expect(
      await client.ok('nack', { items: [{ queue: 'jobs', seq: m!.seq, deliveryId: m!.deliveryId }] }),
    ).toEqual({
      failed: [],
    });
    expect((await client.ok('queueStats', { name: 'dlq' })).depth).toBe(1);
    expect(await client.ok('redrive', { dlq: 'dlq' })).toBe(1);
    expect(await client.ok('redrive', { dlq: 'dlq' })).toBe(0);
    const [back] = await client.ok('receive', { queue: 'jobs', max: 1, waitMs: 0 });
    expect(text(back!.body)).toBe('poison');
    expect(back!.deliveryCount).toBe(1);
  });

  it('answers cluster on any node, leader or not', async () => {
    const { client } = await connected(
      new LocalLog({ nodeId: 'n3', address: '10.0.0.3:7400', leaderTerm: null }),
    );
    const info = await client.ok('cluster', {});
    expect(info).toMatchObject({
      nodeId: 'n3',
      leaderId: null,
      nodes: [{ id: 'n3', url: 'ws://10.0.0.3:7400/client', role: 'follower', reachable: true }],
    });
  });
});
