/**
 * Proves push consumption against the fake cluster: `consume` never holds more than prefetch
 * messages (also across a reconnect, where stale deliveries shrink the new window), acks on
 * resolve and nacks on throw, `messages()` is bounded and unsubscribes when the loop breaks,
 * `consumeBatch` cuts batches by count and by time and settles them as a whole, and `close()`
 * lets handlers in progress finish and settle.
 */

import { describe, expect, it } from 'vitest';
import { FlotillaError, type Message } from './index.js';
import { connectTo, startCluster } from './testing/harness.js';
import { waitFor } from './testing/wait.js';
import { deferred } from './util.js';

/** A handler whose calls block until the test releases them, counting how many run at once. */
function gatedHandler<T>() {
  const gates: Array<() => void> = [];
  const seen: Message<T>[] = [];
  const state = { running: 0, maxRunning: 0 };
  const handler = async (message: Message<T>) => {
    seen.push(message);
    state.running++;
    state.maxRunning = Math.max(state.maxRunning, state.running);
    await new Promise<void>((resolve) => gates.push(resolve));
    state.running--;
  };
  const releaseOne = () => {
    const gate = gates.shift();
    gate?.();
    return gate !== undefined;
  };
  return { handler, gates, seen, state, releaseOne };
}

describe('consume', () => {
  it('never holds more than prefetch messages and acks each one when its handler resolves', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.publish('q', i)));
    const gated = gatedHandler<number>();
    await client.consume('q', gated.handler, { prefetch: 5 });
    const allAcked = () => cluster.broker.stats('q').ackedCount === 40;
    while (!allAcked()) {
      await waitFor(() => gated.gates.length > 0 || allAcked(), 'a handler to be running');
      gated.releaseOne();
    }
    expect(gated.state.maxRunning).toBe(5);
    expect(cluster.broker.maxUnsettled('q')).toBe(5);
    expect(cluster.requestsOf('subscribe')[0]!.request.params.prefetch).toBe(5);
    expect(gated.seen.map((m) => m.body)).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('nacks when the handler throws, until the queue dead-letters the message', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q.dlq');
    await client.createQueue('q', { maxDeliveries: 3, deadLetterQueue: 'q.dlq' });
    const counts: number[] = [];
    await client.consume('q', (message) => {
      counts.push(message.deliveryCount);
      throw new Error('poison');
    });
    await client.publish('q', 'bad');
    await waitFor(() => cluster.broker.stats('q.dlq').depth === 1, 'the message to be dead-lettered');
    expect(counts).toEqual([1, 2, 3]);
    expect(cluster.requestsOf('nack')).toHaveLength(3);
    expect(cluster.requestsOf('ack')).toHaveLength(0);
  });

  it('hands a dead-lettered message to a consumer already subscribed to the dead-letter queue', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q.dlq');
    await client.createQueue('q', { deadLetterQueue: 'q.dlq' });
    const dead: Message<string>[] = [];
    await client.consume<string>('q.dlq', (message) => {
      dead.push(message);
    });
    await client.consume('q', (message) => message.nack({ deadLetter: true }));
    await client.publish('q', 'unparseable');
    await waitFor(() => dead.length === 1, 'the delivery from the dead-letter queue');
    expect(dead[0]!.body).toBe('unparseable');
    expect(dead[0]!.deadLetter).toMatchObject({ queue: 'q', reason: 'rejected' });
    await waitFor(() => cluster.broker.stats('q.dlq').ackedCount === 1, 'the dead letter to be acked');
  });

  it('does not settle again a message the handler settled itself', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.consume('q', async (message) => {
      await message.nack({ delayMs: 60_000 });
    });
    await client.publish('q', 'later');
    await waitFor(() => cluster.broker.stats('q').delayed === 1, 'the nacked message to wait');
    expect(cluster.requestsOf('nack')).toHaveLength(1);
    expect(cluster.requestsOf('nack')[0]!.request.params.delayMs).toBe(60_000);
    expect(cluster.requestsOf('ack')).toHaveLength(0);
  });

  it('close() waits for handlers in progress and their acks', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const gated = gatedHandler();
    const subscription = await client.consume('q', gated.handler);
    await client.publish('q', 'work');
    await waitFor(() => gated.gates.length === 1, 'the handler to start');
    let closed = false;
    const closing = subscription.close().then(() => {
      closed = true;
    });
    await waitFor(() => cluster.requestsOf('unsubscribe').length === 1, 'the unsubscribe');
    expect(closed).toBe(false);
    gated.releaseOne();
    await closing;
    expect(cluster.broker.stats('q').ackedCount).toBe(1);
    expect(await subscription.closed()).toBeNull();
  });

  it('ends with QUEUE_NOT_FOUND when the queue is deleted, and reports it as an error event', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const errors: FlotillaError[] = [];
    client.on('error', (error) => errors.push(error));
    const subscription = await client.consume('q', () => {});
    await client.deleteQueue('q');
    const reason = await subscription.closed();
    expect(reason).toBeInstanceOf(FlotillaError);
    expect(reason?.code).toBe('QUEUE_NOT_FOUND');
    // A handler-based consumer may not watch closed(): the client's error event says it too.
    expect(errors).toEqual([reason]);
  });

  it('rejects at once for a queue that does not exist', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await expect(client.consume('missing', () => {})).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
  });

  it('stays within prefetch across a reconnect: stale deliveries shrink the new window', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(['a', 'b', 'c', 'd'].map((body) => client.publish('q', body)));
    const gated = gatedHandler();
    await client.consume('q', gated.handler, { prefetch: 3 });
    await waitFor(() => gated.gates.length === 3, 'three handlers running');
    cluster.dropConnections();
    await waitFor(() => client.status === 'connected' && cluster.sessionCount === 1, 'the reconnect');
    // A request after the reconnect: any subscribe would have been sent before it.
    await client.queueStats('q');
    expect(cluster.requestsOf('subscribe')).toHaveLength(1);
    gated.releaseOne();
    await waitFor(() => cluster.requestsOf('subscribe').length === 2, 'a subscribe once a slot is free');
    expect(cluster.requestsOf('subscribe')[1]!.request.params.prefetch).toBe(1);
    gated.releaseOne();
    await waitFor(() => cluster.requestsOf('credit').length === 1, 'the window to grow');
    expect(cluster.requestsOf('credit')[0]!.request.params.prefetch).toBe(2);
    while (gated.releaseOne() || cluster.broker.stats('q').depth > 0) {
      await waitFor(() => gated.gates.length > 0 || cluster.broker.stats('q').depth === 0, 'progress');
    }
    expect(gated.state.maxRunning).toBeLessThanOrEqual(3);
  });

  it('reports a failed automatic ack of a current delivery as an error event', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const errors: FlotillaError[] = [];
    client.on('error', (error) => errors.push(error));
    const gated = gatedHandler();
    await client.consume('q', gated.handler, { prefetch: 1 });
    await client.publish('q', 'slow');
    await waitFor(() => gated.gates.length === 1, 'the handler to start');
    // The lease ends while the handler works; the message goes to the next delivery.
    cluster.broker.expireLeases();
    await waitFor(() => gated.gates.length === 2, 'the redelivery');
    gated.releaseOne();
    await waitFor(() => errors.length === 1, 'the error event');
    expect(errors[0]!.code).toBe('LEASE_EXPIRED');
    gated.releaseOne();
    await waitFor(() => cluster.broker.stats('q').ackedCount === 1, 'the redelivery to be acked');
  });
});

describe('messages()', () => {
  it('iterates with a bounded buffer and unsubscribes when the loop breaks', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.publish('q', i)));
    const bodies: unknown[] = [];
    for await (const message of client.messages('q', { prefetch: 2 })) {
      bodies.push(message.body);
      await message.ack();
      if (bodies.length === 4) break;
    }
    expect(bodies).toEqual([0, 1, 2, 3]);
    expect(cluster.requestsOf('unsubscribe')).toHaveLength(1);
    expect(cluster.requestsOf('subscribe')[0]!.request.params.prefetch).toBe(2);
    // What was buffered but never read went back to the queue at once.
    await waitFor(() => cluster.broker.stats('q').ready === 6, 'unread messages to be ready again');
  });

  it('is single-reader', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const stream = client.messages('q');
    stream[Symbol.asyncIterator]();
    expect(() => stream[Symbol.asyncIterator]()).toThrow(FlotillaError);
    await stream.close();
  });

  it('throws the typed error of a subscription that cannot start', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    const stream = client.messages('missing');
    await expect(stream.next()).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
  });
});

describe('consumeBatch', () => {
  it('cuts batches at maxMessages and acks each batch together', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(Array.from({ length: 25 }, (_, i) => client.publish('q', i)));
    const sizes: number[] = [];
    const subscription = await client.consumeBatch(
      'q',
      (messages) => {
        sizes.push(messages.length);
      },
      { maxMessages: 10, maxWaitMs: 600_000 },
    );
    await waitFor(() => cluster.broker.stats('q').ackedCount === 20, 'two full batches acked');
    expect(sizes).toEqual([10, 10]);
    expect(cluster.requestsOf('ack').map((r) => r.request.params.items.length)).toEqual([10, 10]);
    await subscription.close();
    // Deliveries already on their way when the unsubscribe went out are given back by the SDK as
    // they arrive, possibly just after close() resolves.
    await waitFor(() => cluster.broker.stats('q').ready === 5, 'the last five to be given back');
    expect(sizes).toEqual([10, 10]);
  });

  it('hands over a partial batch maxWaitMs after its first message', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const batches = deferred<unknown[]>();
    await client.consumeBatch('q', (messages) => batches.resolve(messages.map((m) => m.body)), {
      maxMessages: 100,
      maxWaitMs: 20,
    });
    await Promise.all(['x', 'y', 'z'].map((body) => client.publish('q', body)));
    expect(await batches.promise).toEqual(['x', 'y', 'z']);
  });

  it('nacks the whole batch when the handler throws', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(['a', 'b', 'c'].map((body) => client.publish('q', body)));
    const deliveries: number[][] = [];
    await client.consumeBatch(
      'q',
      (messages) => {
        deliveries.push(messages.map((m) => m.deliveryCount));
        if (deliveries.length === 1) throw new Error('batch failed');
      },
      { maxMessages: 3, maxWaitMs: 600_000 },
    );
    await waitFor(() => cluster.broker.stats('q').ackedCount === 3, 'the retried batch to be acked');
    expect(deliveries).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
    expect(cluster.requestsOf('nack')[0]!.request.params.items).toHaveLength(3);
  });
});
