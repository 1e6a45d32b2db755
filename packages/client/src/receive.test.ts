/**
 * Proves pull consumption and settlement against the fake cluster: `receive` leases what is ready
 * and long-polls when nothing is, acks/nacks/extends of one turn share one frame per op, each
 * caller hears its own item's outcome (LEASE_EXPIRED for a lease that ended), settling twice is
 * refused locally, and peek/redrive/admin calls map to their ops.
 */

import { describe, expect, it } from 'vitest';
import { FlotillaError } from './index.js';
import { connectTo, startCluster } from './testing/harness.js';
import { settle, waitFor } from './testing/wait.js';

describe('receive', () => {
  it('leases up to max ready messages with their metadata', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', { n: 1 }, { headers: { a: 'b' }, group: 'g1' });
    await client.publish('q', 'two');
    await client.publish('q', 'three');
    const messages = await client.receive('q', { max: 2 });
    expect(messages.map((m) => m.body)).toEqual([{ n: 1 }, 'two']);
    const [first] = messages;
    expect(first).toMatchObject({ queue: 'q', seq: 1, headers: { a: 'b' }, group: 'g1', deliveryCount: 1 });
    expect(first!.deliveryId).toBeGreaterThan(0);
    expect(first!.leaseDeadline.getTime()).toBeGreaterThan(first!.publishedAt.getTime());
    expect(first!.bytes).toBeInstanceOf(Uint8Array);
    expect(cluster.broker.stats('q')).toMatchObject({ ready: 1, inFlight: 2 });
  });

  it('long-polls: waits for a message published after the request', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const pending = client.receive('q', { max: 5, waitMs: 10_000 });
    await waitFor(() => cluster.requestsOf('receive').length === 1, 'the receive to reach the server');
    await client.publish('q', 'late');
    const messages = await pending;
    expect(messages.map((m) => m.body)).toEqual(['late']);
    expect(cluster.requestsOf('receive')[0]!.request.params.waitMs).toBe(10_000);
  });

  it('answers empty when nothing is ready and waitMs is 0', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    expect(await client.receive('q')).toEqual([]);
  });

  it('passes a visibility timeout override', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.receive('q', { visibilityTimeoutMs: 5_000 });
    expect(cluster.requestsOf('receive')[0]!.request.params.visibilityTimeoutMs).toBe(5_000);
  });
});

describe('settlement', () => {
  it('coalesces the acks of one turn into one frame', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.publish('q', i)));
    const messages = await client.receive('q', { max: 10 });
    await Promise.all(messages.map((m) => m.ack()));
    expect(cluster.requestsOf('ack')).toHaveLength(1);
    expect(cluster.requestsOf('ack')[0]!.request.params.items).toHaveLength(10);
    expect(cluster.broker.stats('q').depth).toBe(0);
  });

  it('splits settlements at the server maxAckBatch', async () => {
    const cluster = await startCluster({ limits: { maxAckBatch: 4 } });
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(Array.from({ length: 10 }, (_, i) => client.publish('q', i)));
    const messages = await client.receive('q', { max: 10 });
    await Promise.all(messages.map((m) => m.ack()));
    expect(cluster.requestsOf('ack').map((r) => r.request.params.items.length)).toEqual([4, 4, 2]);
  });

  it('groups nacks by delay and extends by length', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(Array.from({ length: 4 }, (_, i) => client.publish('q', i)));
    const [a, b, c, d] = await client.receive('q', { max: 4 });
    await Promise.all([a!.extend(60_000), b!.extend(60_000), c!.nack({ delayMs: 1_000 }), d!.nack()]);
    expect(cluster.requestsOf('extend')).toHaveLength(1);
    expect(cluster.requestsOf('extend')[0]!.request.params).toMatchObject({ ms: 60_000 });
    const nacks = cluster.requestsOf('nack').map((r) => r.request.params.delayMs ?? null);
    expect(nacks.sort()).toEqual([1_000, null]);
  });

  it('fails only the item whose lease ended, with LEASE_EXPIRED', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', 'a');
    const [stale] = await client.receive('q');
    cluster.broker.expireLeases();
    await client.publish('q', 'b');
    const fresh = await client.receive('q', { max: 2 });
    const outcomes = await Promise.all([settle(stale!.ack()), ...fresh.map((m) => settle(m.ack()))]);
    expect(outcomes.map((o) => o.ok)).toEqual([false, true, true]);
    const error = (outcomes[0] as { error: FlotillaError }).error;
    expect(error).toBeInstanceOf(FlotillaError);
    expect(error.code).toBe('LEASE_EXPIRED');
    expect(error.details).toMatchObject({ queue: 'q', seq: 1, deliveryId: stale!.deliveryId });
    expect(cluster.requestsOf('ack')).toHaveLength(1);
  });

  it('settles after the lease ended as the protocol says: ack removes, a late reject moves nothing', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q.dlq');
    await client.createQueue('q', { deadLetterQueue: 'q.dlq' });
    await client.publishBatch('q', [{ body: 'a' }, { body: 'b' }]);
    const [a, b] = await client.receive('q', { max: 2 });
    cluster.broker.expireLeases(); // nobody receives them again before the settlements
    await a!.ack();
    await b!.nack({ deadLetter: true });
    expect(cluster.broker.stats('q')).toMatchObject({ depth: 1, ready: 1 });
    expect(cluster.broker.stats('q.dlq').depth).toBe(0);
    // The late rejection left the message in the queue: it is delivered again.
    const [again] = await client.receive('q');
    expect(again!.seq).toBe(b!.seq);
    await again!.ack();
    await expect(client.receive('q')).resolves.toEqual([]);
  });

  it('a late ack of a message dead-lettered meanwhile fails with LEASE_EXPIRED: its copy waits in the DLQ', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q.dlq');
    await client.createQueue('q', { deadLetterQueue: 'q.dlq' });
    await client.publish('q', 'slow job');
    const [late] = await client.receive('q');
    cluster.broker.expireLeases(); // the slow consumer's lease ends; another gets the message...
    const [again] = await client.receive('q');
    await again!.nack({ deadLetter: true }); // ...and rejects it into q.dlq
    expect(cluster.broker.stats('q.dlq').depth).toBe(1);
    const outcome = await settle(late!.ack());
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: FlotillaError }).error.code).toBe('LEASE_EXPIRED');
    const [copy] = await client.receive('q.dlq');
    expect(copy).toMatchObject({ body: 'slow job', deadLetter: { queue: 'q', seq: late!.seq } });
  });

  it('returns the first outcome for a repeated ack and refuses a settle after a settle', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', 'a');
    const [message] = await client.receive('q');
    const first = message!.ack();
    expect(message!.ack()).toBe(first);
    await first;
    await expect(message!.nack()).rejects.toMatchObject({ code: 'LEASE_EXPIRED' });
    await expect(message!.extend(1_000)).rejects.toMatchObject({ code: 'LEASE_EXPIRED' });
    expect(message!.settled).toBe(true);
    expect(cluster.requestsOf('ack')).toHaveLength(1);
  });

  it('refuses out-of-range nack delays and extensions without sending', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', 'a');
    const [message] = await client.receive('q');
    await expect(message!.extend(0)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', field: 'ms' });
    await expect(message!.nack({ delayMs: -5 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(message!.settled).toBe(false);
    expect(cluster.requestsOf('nack')).toHaveLength(0);
  });
});

describe('rejection (nack with deadLetter)', () => {
  it('dead-letters a message at once with reason rejected, in its own frame', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q.dlq');
    await client.createQueue('q', { maxDeliveries: 5, deadLetterQueue: 'q.dlq' });
    await client.publish('q', 'malformed');
    await client.publish('q', 'retry me');
    const [bad, other] = await client.receive('q', { max: 2 });
    await Promise.all([bad!.nack({ deadLetter: true }), other!.nack({ delayMs: 0 })]);
    const nacks = cluster.requestsOf('nack').map((r) => r.request.params);
    expect(nacks).toHaveLength(2);
    expect(nacks.find((p) => p.deadLetter === true)?.items.map((i) => i.seq)).toEqual([1]);
    expect(nacks.find((p) => p.deadLetter !== true)).toMatchObject({ delayMs: 0 });
    const [dead] = await client.receive('q.dlq');
    expect(dead).toMatchObject({
      body: 'malformed',
      deadLetter: { queue: 'q', seq: 1, deliveryCount: 1, reason: 'rejected' },
    });
    expect((await client.receive('q'))[0]!.body).toBe('retry me');
  });

  it('refuses a delay with it, or a flag that is not a boolean, before sending', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await client.publish('q', 'x');
    const [m] = await client.receive('q');
    await expect(m!.nack({ deadLetter: true, delayMs: 5 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'deadLetter',
    });
    await expect(m!.nack({ deadLetter: 'yes' as unknown as boolean })).rejects.toMatchObject({
      field: 'deadLetter',
    });
    expect(m!.settled).toBe(false);
    expect(cluster.requestsOf('nack')).toHaveLength(0);
    await m!.nack({ deadLetter: false });
    expect(cluster.requestsOf('nack')[0]!.request.params.deadLetter).toBeUndefined();
  });
});

describe('peek, redrive and admin', () => {
  it('peeks without leasing', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all(['a', 'b', 'c'].map((body) => client.publish('q', body)));
    const views = await client.peek('q', { fromSeq: 2, max: 5 });
    expect(views.map((v) => [v.seq, v.body])).toEqual([
      [2, 'b'],
      [3, 'c'],
    ]);
    expect(cluster.broker.stats('q').ready).toBe(3);
  });

  it('shows where a dead-lettered message came from, on peek, receive and consume', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q.dlq');
    await client.createQueue('q', { maxDeliveries: 2, deadLetterQueue: 'q.dlq' });
    await client.publish('q', 'poison');
    for (let i = 0; i < 2; i++) await (await client.receive('q'))[0]!.nack();
    const history = { queue: 'q', seq: 1, deliveryCount: 2, reason: 'max-deliveries' };
    const [peeked] = await client.peek('q.dlq');
    expect(peeked).toMatchObject({ deliveryCount: 0, deadLetter: history });
    const [received] = await client.receive('q.dlq');
    expect(received).toMatchObject({ body: 'poison', deliveryCount: 1, deadLetter: history });
    expect(received!.deadLetter!.timeMs).toBeGreaterThan(0);
    await received!.nack();
    const consumed: unknown[] = [];
    await client.consume('q.dlq', (message) => {
      consumed.push(message.deadLetter);
    });
    await waitFor(() => consumed.length === 1, 'the dead-lettered message to be consumed');
    expect(consumed[0]).toMatchObject(history);
    await client.publish('q', 'fine');
    expect((await client.receive('q'))[0]!.deadLetter).toBeNull();
  });

  it('redrives dead-lettered messages back to their queue', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q.dlq');
    await client.createQueue('q', { maxDeliveries: 1, deadLetterQueue: 'q.dlq' });
    await client.publish('q', 'poison');
    const [message] = await client.receive('q');
    await message!.nack();
    expect((await client.queueStats('q.dlq')).depth).toBe(1);
    expect(await client.redrive('q.dlq')).toBe(1);
    const [again] = await client.receive('q');
    expect(again!.body).toBe('poison');
    expect(again!.deliveryCount).toBe(1);
  });

  it('creates, updates, lists, purges and deletes queues', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    const options = await client.createQueue('q', { visibilityTimeoutMs: 5_000 });
    expect(options.visibilityTimeoutMs).toBe(5_000);
    const updated = await client.updateQueue('q', { retry: { delayMs: 100 } });
    expect(updated.retry.delayMs).toBe(100);
    await expect(client.createQueue('q')).rejects.toMatchObject({ code: 'QUEUE_EXISTS' });
    await Promise.all([client.publish('q', 1), client.publish('q', 2)]);
    expect((await client.listQueues()).map((s) => [s.name, s.depth])).toEqual([['q', 2]]);
    expect(await client.purgeQueue('q')).toBe(2);
    await client.deleteQueue('q');
    await expect(client.queueStats('q')).rejects.toMatchObject({ code: 'QUEUE_NOT_FOUND' });
  });

  it('refuses bad names and options before sending, naming the field', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await expect(client.createQueue('bad name')).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'name',
    });
    await expect(client.createQueue('q', { maxDeliveries: -1 })).rejects.toMatchObject({
      field: 'options.maxDeliveries',
    });
    await expect(client.receive('q', { max: 0 })).rejects.toMatchObject({ field: 'max' });
    await expect(client.consume('q', () => {}, { prefetch: 0 })).rejects.toMatchObject({ field: 'prefetch' });
    expect(cluster.requests).toHaveLength(0);
  });

  it('reads the cluster view from the node in use', async () => {
    const cluster = await startCluster({ nodeIds: ['n1', 'n2'], leaderId: 'n2' });
    const client = await connectTo(cluster);
    const info = await client.cluster();
    expect(info).toMatchObject({ nodeId: 'n2', leaderId: 'n2' });
    expect(info.nodes.map((n) => n.role)).toEqual(['follower', 'leader']);
  });
});
