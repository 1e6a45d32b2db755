/**
 * Proves the data path over real WebSockets: publish confirms with seqs and duplicates, the queue's
 * priority levels are enforced, push consumers never hold more than their window of unsettled
 * deliveries (credit 0 pauses, acks and nacks free slots), receive long-polls (woken by a publish,
 * empty at its deadline), ack/nack/extend report per-item outcomes, leases end after the
 * visibility timeout, poison messages reach the DLQ, groups keep one message in flight, and a
 * closed session's leases come back at once, counted as failed deliveries. Node metrics count
 * what happened.
 */
import type { DeliveredMessage, DeliverPush } from '@flotilla/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalLog } from '../broker/testing/local-log.js';
import { NodeMetrics } from '../metrics/metrics.js';
import { bytes, startBroker, type TestBroker, TestClient, text, waitFor } from './testing/harness.js';

const brokers: TestBroker[] = [];
afterEach(async () => {
  for (const broker of brokers.splice(0)) await broker.close();
});

async function setup(queueOptions: Record<string, unknown> = {}) {
  const broker = await startBroker();
  brokers.push(broker);
  const client = await TestClient.connect(broker.url);
  await client.ok('createQueue', { name: 'q', options: queueOptions });
  return { broker, client };
}

const ref = (m: DeliveredMessage) => ({ queue: m.queue, seq: m.seq, deliveryId: m.deliveryId });

async function publishTexts(client: TestClient, queue: string, ...bodies: string[]) {
  return client.ok('publish', { queue, messages: bodies.map((b) => ({ body: bytes(b) })) });
}

describe('publish', () => {
  it('confirms with seqs, reports duplicates of an idempotency key, and keeps formats and headers', async () => {
    const { client } = await setup();
    const first = await client.ok('publish', {
      queue: 'q',
      messages: [
        { body: bytes('a'), idempotencyKey: 'k1' },
        { body: bytes('"b"'), format: 3, headers: { trace: 't' }, group: 'g' },
      ],
    });
    expect(first).toEqual({ seqs: [1, 2], duplicates: [] });
    const again = await client.ok('publish', {
      queue: 'q',
      messages: [{ body: bytes('c') }, { body: bytes('a'), idempotencyKey: 'k1' }],
    });
    expect(again).toEqual({ seqs: [3, 1], duplicates: [1] });
    const got = await client.ok('receive', { queue: 'q', max: 10, waitMs: 0 });
    expect(got.map((m) => [m.seq, m.format, m.headers, m.group])).toEqual([
      [1, 0, null, null],
      [2, 3, { trace: 't' }, 'g'],
      [3, 0, null, null],
    ]);
  });

  it('refuses a priority above the queue’s levels naming the message, and a full queue as a whole', async () => {
    const { client } = await setup({ priorityLevels: 2, maxMessages: 2 });
    const refused = await client.error('publish', {
      queue: 'q',
      messages: [
        { body: bytes('a'), priority: 1 },
        { body: bytes('b'), priority: 2 },
      ],
    });
    expect(refused.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'messages[1].priority' });
    await publishTexts(client, 'q', 'a');
    const full = await client.error('publish', {
      queue: 'q',
      messages: [{ body: bytes('b') }, { body: bytes('c') }],
    });
    expect(full.error.code).toBe('QUEUE_FULL');
    expect((await client.ok('queueStats', { name: 'q' })).depth).toBe(1);
  });
});

describe('push consumers', () => {
  it('never has more than its prefetch unsettled, and each ack lets one more through', async () => {
    const { client } = await setup();
    await publishTexts(client, 'q', ...Array.from({ length: 10 }, (_, i) => `m${i}`));
    const subId = await client.ok('subscribe', { queue: 'q', prefetch: 3 });
    await waitFor(() => client.delivered(subId).length === 3, 'first window');
    let settled = 0;
    while (settled < 10) {
      const delivered = client.delivered(subId);
      expect(delivered.length - settled).toBeLessThanOrEqual(3);
      const next = delivered[settled];
      if (next === undefined) {
        await waitFor(() => client.delivered(subId).length > settled, 'next delivery');
        continue;
      }
      expect(await client.ok('ack', { items: [ref(next)] })).toEqual({ failed: [] });
      settled++;
    }
    expect(client.delivered(subId).map((m) => text(m.body))).toEqual(
      Array.from({ length: 10 }, (_, i) => `m${i}`),
    );
  });

  it('pauses at credit 0 and resumes when the window opens again', async () => {
    const { client } = await setup();
    const subId = await client.ok('subscribe', { queue: 'q', prefetch: 2 });
    expect(await client.ok('credit', { subId, prefetch: 0 })).toBeNull();
    await publishTexts(client, 'q', 'a', 'b', 'c');
    expect((await client.ok('queueStats', { name: 'q' })).inFlight).toBe(0);
    expect(client.delivered(subId)).toEqual([]);
    await client.ok('credit', { subId, prefetch: 5 });
    await waitFor(() => client.delivered(subId).length === 3, 'deliveries after credit');
    expect((await client.error('credit', { subId: 999, prefetch: 1 })).error.code).toBe(
      'SUBSCRIPTION_NOT_FOUND',
    );
  });

  it('frees a slot on nack and redelivers, and stops after unsubscribe while leases stay settleable', async () => {
    const { client } = await setup();
    await publishTexts(client, 'q', 'a');
    const subId = await client.ok('subscribe', { queue: 'q', prefetch: 1 });
    await waitFor(() => client.delivered(subId).length === 1, 'delivery');
    await client.ok('nack', { items: [ref(client.delivered(subId)[0]!)] });
    await waitFor(() => client.delivered(subId).length === 2, 'redelivery');
    const again = client.delivered(subId)[1]!;
    expect(again.deliveryCount).toBe(2);
    expect(await client.ok('unsubscribe', { subId })).toBeNull();
    await publishTexts(client, 'q', 'b');
    expect((await client.ok('queueStats', { name: 'q' })).ready).toBe(1);
    expect(await client.ok('ack', { items: [ref(again)] })).toEqual({ failed: [] });
    expect((await client.error('unsubscribe', { subId })).error.code).toBe('SUBSCRIPTION_NOT_FOUND');
  });

  it('ends subscriptions with QUEUE_NOT_FOUND when the queue is deleted', async () => {
    const { client } = await setup();
    const subId = await client.ok('subscribe', { queue: 'q', prefetch: 1 });
    await client.ok('deleteQueue', { name: 'q' });
    const ended = await client.waitForPush((p) => p.kind === 'subscriptionEnded', 'subscriptionEnded');
    expect(ended).toMatchObject({ kind: 'subscriptionEnded', subId, code: 'QUEUE_NOT_FOUND' });
    expect((await client.error('subscribe', { queue: 'q', prefetch: 1 })).error.code).toBe('QUEUE_NOT_FOUND');
  });

  it('keeps one message of a group in flight, serving other groups meanwhile', async () => {
    const { client } = await setup();
    await client.ok('publish', {
      queue: 'q',
      messages: [
        { body: bytes('g1-a'), group: 'g1' },
        { body: bytes('g1-b'), group: 'g1' },
        { body: bytes('g2-a'), group: 'g2' },
      ],
    });
    const subId = await client.ok('subscribe', { queue: 'q', prefetch: 10 });
    await waitFor(() => client.delivered(subId).length === 2, 'one per group');
    expect(client.delivered(subId).map((m) => text(m.body))).toEqual(['g1-a', 'g2-a']);
    await client.ok('ack', { items: [ref(client.delivered(subId)[0]!)] });
    await waitFor(() => client.delivered(subId).length === 3, 'group unblocked');
    expect(text(client.delivered(subId)[2]!.body)).toBe('g1-b');
  });
});

describe('pull consumers', () => {
  it('long-polls until a publish arrives, and answers empty at the deadline', async () => {
    const { broker, client } = await setup();
    const waiting = client.send('receive', { queue: 'q', max: 5, waitMs: 5_000 });
    await waitFor(() => broker.gateway.pendingRequests === 1, 'parked receive');
    expect(client.replies.has(waiting)).toBe(false);
    const other = await TestClient.connect(broker.url);
    await publishTexts(other, 'q', 'wake');
    const reply = await client.reply(waiting);
    expect(
      reply.kind === 'result' && reply.op === 'receive' && reply.result.map((m) => text(m.body)),
    ).toEqual(['wake']);
    const started = Date.now();
    const empty = await client.ok('receive', { queue: 'q', max: 5, waitMs: 80 });
    expect(empty).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(75);
    other.close();
  });

  it('uses the requested visibility timeout, after which the message comes back', async () => {
    const { client } = await setup();
    await publishTexts(client, 'q', 'x');
    const [first] = await client.ok('receive', { queue: 'q', max: 1, waitMs: 0, visibilityTimeoutMs: 60 });
    expect(first!.leaseDeadlineMs - first!.publishedAtMs).toBeLessThan(1000);
    const [again] = await client.ok('receive', { queue: 'q', max: 1, waitMs: 2_000 });
    expect(again).toMatchObject({ seq: first!.seq, deliveryCount: 2 });
    expect(again!.deliveryId).toBeGreaterThan(first!.deliveryId);
    const stale = await client.ok('ack', { items: [ref(first!), ref(again!)] });
    expect(stale).toEqual({ failed: [{ index: 0, code: 'LEASE_EXPIRED' }] });
  });
});

describe('settlements', () => {
  it('reports per-item outcomes for ack, nack and extend', async () => {
    const { client } = await setup();
    await client.ok('createQueue', { name: 'other', options: {} });
    await publishTexts(client, 'q', 'a', 'b');
    const [a, b] = await client.ok('receive', { queue: 'q', max: 2, waitMs: 0 });
    const extended = await client.ok('extend', {
      items: [ref(a!), { queue: 'gone', seq: 1, deliveryId: 1 }, { queue: 'other', seq: 5, deliveryId: 5 }],
      ms: 60_000,
    });
    expect(extended).toEqual({
      failed: [
        { index: 1, code: 'QUEUE_NOT_FOUND' },
        { index: 2, code: 'LEASE_EXPIRED' },
      ],
    });
    expect((await client.ok('queueStats', { name: 'q' })).inFlight).toBe(2);
    expect(await client.ok('nack', { items: [ref(b!)], delayMs: 60_000 })).toEqual({ failed: [] });
    expect((await client.ok('queueStats', { name: 'q' })).delayed).toBe(1);
    expect(await client.ok('ack', { items: [ref(a!), ref(a!)] })).toEqual({ failed: [] });
  });

  it('dead-letters a message after maxDeliveries failed deliveries, with its history on peek, receive and push', async () => {
    const { client } = await setup();
    await client.ok('createQueue', { name: 'dlq', options: {} });
    await client.ok('createQueue', { name: 'jobs', options: { maxDeliveries: 2, deadLetterQueue: 'dlq' } });
    await publishTexts(client, 'jobs', 'poison');
    for (let i = 0; i < 2; i++) {
      const [m] = await client.ok('receive', { queue: 'jobs', max: 1, waitMs: 1_000 });
      await client.ok('nack', { items: [ref(m!)] });
    }
    const history = { queue: 'jobs', seq: 1, deliveryCount: 2, reason: 'max-deliveries' };
    const [peeked] = await client.ok('peek', { queue: 'dlq', max: 1 });
    expect(peeked).toMatchObject({ deliveryCount: 0, deadLetter: history });
    const [dead] = await client.ok('receive', { queue: 'dlq', max: 1, waitMs: 1_000 });
    expect(text(dead!.body)).toBe('poison');
    expect(dead).toMatchObject({ deliveryCount: 1, deadLetter: history });
    expect(dead!.deadLetter!.timeMs).toBeGreaterThanOrEqual(dead!.publishedAtMs);
    await client.ok('nack', { items: [ref(dead!)] });
    const subId = await client.ok('subscribe', { queue: 'dlq', prefetch: 1 });
    await waitFor(() => client.delivered(subId).length === 1, 'push of the dead-lettered message');
    expect(client.delivered(subId)[0]).toMatchObject({ deliveryCount: 2, deadLetter: history });
    expect((await client.ok('queueStats', { name: 'jobs' })).deadLetteredCount).toBe(1);
    await publishTexts(client, 'jobs', 'fine');
    const [plain] = await client.ok('receive', { queue: 'jobs', max: 1, waitMs: 1_000 });
    expect(plain!.deadLetter).toBeNull();
  });
});

describe('rejection (nack with deadLetter)', () => {
  it('moves a message to the DLQ at once with reason rejected, frees the slot, and refuses a delay with it', async () => {
    const { client } = await setup();
    await client.ok('createQueue', { name: 'dlq', options: {} });
    await client.ok('createQueue', { name: 'jobs', options: { maxDeliveries: 5, deadLetterQueue: 'dlq' } });
    await publishTexts(client, 'jobs', 'malformed', 'next');
    const subId = await client.ok('subscribe', { queue: 'jobs', prefetch: 1 });
    await waitFor(() => client.delivered(subId).length === 1, 'first delivery');
    const [bad] = client.delivered(subId);
    const refused = await client.error('nack', { items: [ref(bad!)], delayMs: 10, deadLetter: true });
    expect(refused.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'deadLetter' });
    expect(await client.ok('nack', { items: [ref(bad!)], deadLetter: true })).toEqual({ failed: [] });
    await waitFor(() => client.delivered(subId).length === 2, 'the freed slot to bring the next message');
    expect(text(client.delivered(subId)[1]!.body)).toBe('next');
    const [dead] = await client.ok('peek', { queue: 'dlq', max: 1 });
    expect(text(dead!.body)).toBe('malformed');
    expect(dead!.deadLetter).toMatchObject({ queue: 'jobs', seq: 1, deliveryCount: 1, reason: 'rejected' });
    expect((await client.ok('queueStats', { name: 'jobs' })).deadLetteredCount).toBe(1);
  });

  it('drops and counts a rejected message when its queue has no DLQ', async () => {
    const { broker, client } = await setup();
    await publishTexts(client, 'q', 'malformed');
    const [m] = await client.ok('receive', { queue: 'q', max: 1, waitMs: 0 });
    expect(await client.ok('nack', { items: [ref(m!)], deadLetter: true })).toEqual({ failed: [] });
    expect(broker.runtime.state.stats('q')).toMatchObject({ ready: 0, counters: { dropped: 1 } });
  });
});

describe('session close', () => {
  it('releases the leases of a closed connection at once, counting them as failed deliveries', async () => {
    const { broker, client } = await setup();
    await client.ok('createQueue', { name: 'jobs', options: { maxDeliveries: 2 } });
    await publishTexts(client, 'jobs', 'crashy');
    for (let attempt = 1; attempt <= 2; attempt++) {
      const worker = await TestClient.connect(broker.url);
      const subId = await worker.ok('subscribe', { queue: 'jobs', prefetch: 5 });
      await waitFor(() => worker.delivered(subId).length === 1, 'delivery to the worker');
      expect(worker.delivered(subId)[0]!.deliveryCount).toBe(attempt);
      worker.close();
      await worker.closed;
      await waitFor(() => broker.runtime.state.stats('jobs')?.inFlight === 0, 'leases released');
    }
    const stats = await client.ok('queueStats', { name: 'jobs' });
    expect(stats).toMatchObject({ depth: 0, deliveredCount: 2 });
    expect(broker.runtime.state.stats('jobs')?.counters.dropped).toBe(1);
  });

  it('pushes deliveries in frames of several messages', async () => {
    const { client } = await setup();
    await publishTexts(client, 'q', ...Array.from({ length: 50 }, (_, i) => `m${i}`));
    const subId = await client.ok('subscribe', { queue: 'q', prefetch: 100 });
    await waitFor(() => client.delivered(subId).length === 50, 'all deliveries');
    const frames = client.pushes.filter((p): p is DeliverPush => p.kind === 'deliver');
    expect(frames.length).toBeLessThan(50);
  });
});

describe('metrics', () => {
  it('counts published, delivered and acked messages per queue, sessions and errors by code', async () => {
    const log = new LocalLog();
    const metrics = new NodeMetrics('n1', { status: () => log.status(), queues: () => [] }, false);
    const broker = await startBroker({ log, metrics });
    brokers.push(broker);
    const client = await TestClient.connect(broker.url);
    await client.ok('createQueue', { name: 'q', options: {} });
    await publishTexts(client, 'q', 'a', 'b', 'c');
    const got = await client.ok('receive', { queue: 'q', max: 2, waitMs: 0 });
    await client.ok('ack', { items: got.map(ref) });
    await client.error('queueStats', { name: 'missing' });
    const value = async (name: string, labels: Record<string, string>) => {
      const metric = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
      const sample = metric?.values.find((v) =>
        Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l),
      );
      return sample?.value;
    };
    expect(await value('flotilla_messages_published_total', { queue: 'q' })).toBe(3);
    expect(await value('flotilla_messages_delivered_total', { queue: 'q' })).toBe(2);
    expect(await value('flotilla_messages_acked_total', { queue: 'q' })).toBe(2);
    expect(await value('flotilla_client_sessions', {})).toBe(1);
    expect(await value('flotilla_client_errors_total', { code: 'QUEUE_NOT_FOUND' })).toBe(1);
  });
});
