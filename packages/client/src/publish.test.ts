/**
 * Proves the publish path against the fake cluster: confirms carry the queue's seqs, publishes of
 * one turn share a frame (capped per frame), confirms resolve in publish order, publish waits at
 * the unconfirmed bound and resumes as confirms arrive, one bad message never fails the
 * messages it shared a frame with, and a call's deadline or AbortSignal fails its messages at once
 * (TIMEOUT / CANCELLED), frees their place and keeps them out of later attempts.
 */

import { describe, expect, it } from 'vitest';
import { FlotillaError } from './index.js';
import { connectTo, startCluster } from './testing/harness.js';
import { settle, waitFor, within } from './testing/wait.js';

describe('publish', () => {
  it('resolves with the seq the queue assigned, once confirmed', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('emails');
    const first = await client.publish('emails', 'hello');
    const second = await client.publish('emails', new Uint8Array([1, 2, 3]));
    expect(first).toEqual({ seq: 1, duplicate: false });
    expect(second).toEqual({ seq: 2, duplicate: false });
    const stored = cluster.broker.stored('emails');
    expect(stored.map((m) => [...m.body])).toEqual([[...new TextEncoder().encode('hello')], [1, 2, 3]]);
  });

  it('sends the publishes of one turn as one frame and resolves each from its slot', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const receipts = await Promise.all(Array.from({ length: 50 }, (_, i) => client.publish('q', { i })));
    expect(cluster.requestsOf('publish')).toHaveLength(1);
    expect(cluster.requestsOf('publish')[0]!.request.params.messages).toHaveLength(50);
    expect(receipts.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('caps frames at maxBatchMessages and the server maxPublishBatch', async () => {
    const cluster = await startCluster({ limits: { maxPublishBatch: 40 } });
    const client = await connectTo(cluster, { maxBatchMessages: 100 });
    await client.createQueue('q');
    await Promise.all(Array.from({ length: 100 }, (_, i) => client.publish('q', i)));
    const sizes = cluster.requestsOf('publish').map((r) => r.request.params.messages.length);
    expect(sizes).toEqual([40, 40, 20]);
  });

  it('uses one frame per queue within a turn', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await Promise.all([client.createQueue('a'), client.createQueue('b')]);
    await Promise.all([client.publish('a', 1), client.publish('b', 2), client.publish('a', 3)]);
    const frames = cluster
      .requestsOf('publish')
      .map((r) => [r.request.params.queue, r.request.params.messages.length]);
    expect(frames.sort()).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
  });

  it('resolves confirms in publish order across frames', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { maxBatchMessages: 7 });
    await client.createQueue('q');
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        client.publish('q', i).then((receipt) => {
          order.push(i);
          return receipt;
        }),
      ),
    );
    expect(order).toEqual(Array.from({ length: 30 }, (_, i) => i));
    const bodies = cluster.broker.stored('q').map((m) => m.seq);
    expect(bodies).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('gives every message an idempotency key and keeps the one the user gave', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    await Promise.all([client.publish('q', 1), client.publish('q', 2, { idempotencyKey: 'order-42' })]);
    const keys = cluster.requestsOf('publish')[0]!.request.params.messages.map((m) => m.idempotencyKey);
    expect(keys[1]).toBe('order-42');
    expect(keys[0]).toMatch(/^[A-Za-z0-9_-]{22}\.[0-9a-z]+$/);
  });

  it('reports a duplicate idempotency key with the original seq', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const first = await client.publish('q', 'a', { idempotencyKey: 'k1' });
    const again = await client.publish('q', 'a', { idempotencyKey: 'k1' });
    expect(again).toEqual({ seq: first.seq, duplicate: true });
    expect(cluster.broker.stats('q').depth).toBe(1);
  });

  it('sends every option on the wire', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q', { priorityLevels: 3 });
    await client.publish('q', 'x', {
      delayMs: 10,
      ttlMs: 60_000,
      headers: { trace: 'abc' },
      group: 'customer-7',
      priority: 2,
    });
    const [message] = cluster.requestsOf('publish')[0]!.request.params.messages;
    expect(message).toMatchObject({
      delayMs: 10,
      ttlMs: 60_000,
      headers: { trace: 'abc' },
      group: 'customer-7',
      priority: 2,
      format: 1,
    });
  });
});

describe('backpressure', () => {
  it('waits at maxUnconfirmedMessages and continues as confirms arrive', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { maxUnconfirmedMessages: 10 });
    await client.createQueue('q');
    cluster.interceptor = ({ request }) => (request.op === 'publish' ? { kind: 'hold' } : undefined);
    let confirmed = 0;
    const all = Array.from({ length: 25 }, (_, i) => client.publish('q', i).then(() => confirmed++));
    const sent = () =>
      cluster.requestsOf('publish').reduce((n, r) => n + r.request.params.messages.length, 0);
    await waitFor(() => sent() === 10, 'the first 10 messages to be sent');
    // The bound holds while nothing is confirmed: publish waits instead of sending more.
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent()).toBe(10);
    expect(confirmed).toBe(0);
    cluster.releaseHeld();
    await waitFor(() => sent() === 20, 'the next 10 messages after the confirms');
    expect(confirmed).toBe(10);
    cluster.interceptor = null;
    cluster.releaseHeld();
    await Promise.all(all);
    expect(confirmed).toBe(25);
    expect(cluster.broker.stats('q').depth).toBe(25);
  });

  it('waits at maxUnconfirmedBytes', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { maxUnconfirmedBytes: 10_000 });
    await client.createQueue('q');
    cluster.interceptor = ({ request }) => (request.op === 'publish' ? { kind: 'hold' } : undefined);
    const body = new Uint8Array(3_000);
    const all = Array.from({ length: 6 }, () => client.publish('q', body));
    const sent = () =>
      cluster.requestsOf('publish').reduce((n, r) => n + r.request.params.messages.length, 0);
    await waitFor(() => sent() === 3, 'three 3 kB messages to fill the 10 kB bound');
    await new Promise((resolve) => setImmediate(resolve));
    expect(sent()).toBe(3);
    cluster.interceptor = null;
    cluster.releaseHeld();
    await Promise.all(all);
    expect(sent()).toBe(6);
  });
});

describe('bad messages', () => {
  it('refuses a bad option before sending, naming the field', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const outcome = await settle(client.publish('q', 'x', { delayMs: -1 }));
    expect(outcome.ok).toBe(false);
    const error = (outcome as { error: FlotillaError }).error;
    expect(error).toBeInstanceOf(FlotillaError);
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('delayMs');
    expect(cluster.requestsOf('publish')).toHaveLength(0);
  });

  it('refuses a body above the server maxMessageBytes with MESSAGE_TOO_LARGE', async () => {
    const cluster = await startCluster({ limits: { maxMessageBytes: 1_000 } });
    const client = await connectTo(cluster);
    const outcome = await settle(client.publish('q', new Uint8Array(1_001)));
    expect((outcome as { error: FlotillaError }).error.code).toBe('MESSAGE_TOO_LARGE');
  });

  it('fails only the message the server refuses and stores the rest of its frame', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q', { priorityLevels: 2 });
    // Priority 5 passes the protocol limit (10 levels) but not this queue's 2: only the leader knows.
    const outcomes = await Promise.all([
      settle(client.publish('q', 'a')),
      settle(client.publish('q', 'b', { priority: 5 })),
      settle(client.publish('q', 'c')),
    ]);
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    const error = (outcomes[1] as { error: FlotillaError }).error;
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.field).toBe('priority');
    expect(cluster.broker.stored('q').map((m) => new TextDecoder().decode(m.body))).toEqual(['a', 'c']);
  });

  it('surfaces QUEUE_FULL and QUEUE_NOT_FOUND as typed errors', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('small', { maxMessages: 1 });
    await client.publish('small', 1);
    const full = await settle(client.publish('small', 2));
    expect((full as { error: FlotillaError }).error.code).toBe('QUEUE_FULL');
    const missing = await settle(client.publish('nope', 1));
    expect((missing as { error: FlotillaError }).error.code).toBe('QUEUE_NOT_FOUND');
  });
});

describe('publishBatch', () => {
  it('publishes entries with their own options and returns receipts in order', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const receipts = await client.publishBatch('q', [
      { body: 'a' },
      { body: 'b', headers: { h: '1' } },
      { body: 3 },
    ]);
    expect(receipts.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(cluster.requestsOf('publish')).toHaveLength(1);
    expect(cluster.broker.stored('q')[1]!.headers).toEqual({ h: '1' });
  });

  it('sends nothing when an entry is invalid, naming it', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const outcome = await settle(client.publishBatch('q', [{ body: 'a' }, { body: 'b', group: '' }]));
    expect((outcome as { error: FlotillaError }).error.field).toBe('entries[1].group');
    expect(cluster.requestsOf('publish')).toHaveLength(0);
  });

  it('lists the failed entries and what was stored when the server refuses some', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q', { priorityLevels: 1 });
    const outcome = await settle(client.publishBatch('q', [{ body: 'a' }, { body: 'b', priority: 3 }]));
    const error = (outcome as { error: FlotillaError }).error;
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.details.failed).toEqual([1]);
    expect(error.details.receipts).toEqual([{ seq: 1, duplicate: false }, null]);
  });
});

describe('deadline and cancellation of a publish call', () => {
  const holdPublishes = (cluster: Awaited<ReturnType<typeof startCluster>>) => {
    cluster.interceptor = ({ request }) => (request.op === 'publish' ? { kind: 'hold' } : undefined);
  };
  const sentKeys = (cluster: Awaited<ReturnType<typeof startCluster>>) =>
    cluster.requestsOf('publish').map((r) => r.request.params.messages.map((m) => m.idempotencyKey));

  it('times out a sent publish with TIMEOUT, frees its place, and a retry with its key is stored once', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { maxUnconfirmedMessages: 1 });
    await client.createQueue('q');
    holdPublishes(cluster);
    const slow = settle(client.publish('q', 'slow', { timeoutMs: 50 }));
    await waitFor(() => cluster.requestsOf('publish').length === 1, 'the first publish to be sent');
    const next = client.publish('q', 'next');
    const outcome = await slow;
    const error = (outcome as { error: FlotillaError }).error;
    expect(error).toMatchObject({ code: 'TIMEOUT', maybeApplied: true });
    expect(error.details).toMatchObject({ timeoutMs: 50, sent: true });
    // Its place in the window of 1 went to the next publish, which was sent while the first is held.
    await waitFor(
      () => cluster.requestsOf('publish').length === 2,
      'the next publish to take the freed place',
    );
    cluster.interceptor = null;
    cluster.releaseHeld();
    await next;
    const retry = await client.publish('q', 'slow', {
      idempotencyKey: error.details.idempotencyKey as string,
    });
    expect(retry).toEqual({ seq: 1, duplicate: true });
    expect(cluster.broker.stats('q').depth).toBe(2);
  });

  it('times out a publish still waiting for room without ever sending it', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { maxUnconfirmedMessages: 1 });
    await client.createQueue('q');
    holdPublishes(cluster);
    const first = client.publish('q', 'first');
    await waitFor(() => cluster.requestsOf('publish').length === 1, 'the first publish to be sent');
    const waiting = await settle(client.publish('q', 'never', { timeoutMs: 30 }));
    expect((waiting as { error: FlotillaError }).error).toMatchObject({
      code: 'TIMEOUT',
      details: { sent: false },
    });
    cluster.interceptor = null;
    cluster.releaseHeld();
    await first;
    await client.publish('q', 'third');
    const bodies = cluster.broker.stored('q').map((m) => new TextDecoder().decode(m.body));
    expect(bodies).toEqual(['first', 'third']);
  });

  it('an aborted signal stops retrying its message; the rest of the frame goes on without it', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    cluster.interceptor = ({ request }) =>
      request.op === 'publish'
        ? { kind: 'error', error: new FlotillaError('OVERLOADED', 'busy') }
        : undefined;
    const controller = new AbortController();
    const cancelled = settle(client.publish('q', 'cancelled', { signal: controller.signal }));
    const kept = client.publish('q', 'kept');
    await waitFor(() => cluster.requestsOf('publish').length >= 1, 'the shared frame to be refused once');
    expect(sentKeys(cluster)[0]).toHaveLength(2);
    controller.abort(new Error('user went away'));
    const error = ((await cancelled) as { error: FlotillaError }).error;
    expect(error).toMatchObject({ code: 'CANCELLED', maybeApplied: true, details: { sent: true } });
    expect(error.message).toMatch(/user went away/);
    // Still refused: wait for a retry without the cancelled message (requests arrive in order, so
    // no attempt carrying it is still on its way), then let the retries through.
    await waitFor(() => sentKeys(cluster).at(-1)?.length === 1, 'a retry without the cancelled message');
    cluster.interceptor = null;
    expect(await kept).toEqual({ seq: 1, duplicate: false });
    const frames = sentKeys(cluster);
    expect(frames.at(-1)).toHaveLength(1);
    expect(frames.at(-1)![0]).not.toBe(error.details.idempotencyKey);
    expect(cluster.broker.stored('q').map((m) => new TextDecoder().decode(m.body))).toEqual(['kept']);
  });

  it('a frame whose every message was cancelled stops, and a late confirm changes nothing', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster, { maxUnconfirmedMessages: 2 });
    await client.createQueue('q');
    holdPublishes(cluster);
    const controller = new AbortController();
    const batch = settle(
      client.publishBatch('q', [{ body: 'a' }, { body: 'b' }], { signal: controller.signal }),
    );
    await waitFor(() => cluster.requestsOf('publish').length === 1, 'the batch to be sent');
    controller.abort();
    const error = ((await batch) as { error: FlotillaError }).error;
    expect(error.code).toBe('CANCELLED');
    expect(error.details.failed).toEqual([0, 1]);
    expect(error.details.idempotencyKeys).toEqual(sentKeys(cluster)[0]);
    cluster.interceptor = null;
    cluster.releaseHeld();
    // The window of 2 is free again: two more publishes go out at once and are confirmed.
    expect(
      (await Promise.all([client.publish('q', 'c'), client.publish('q', 'd')])).map((r) => r.seq),
    ).toEqual([3, 4]);
    expect(cluster.requestsOf('publish')).toHaveLength(2);
    await within(client.close(), 5_000, 'a drained close');
  });

  it('a signal aborted before the call rejects at once and sends nothing; bad options are refused', async () => {
    const cluster = await startCluster();
    const client = await connectTo(cluster);
    await client.createQueue('q');
    const outcome = await settle(client.publish('q', 'x', { signal: AbortSignal.abort('no') }));
    expect((outcome as { error: FlotillaError }).error).toMatchObject({
      code: 'CANCELLED',
      details: { sent: false },
    });
    await expect(client.publish('q', 'x', { timeoutMs: 0 })).rejects.toMatchObject({ field: 'timeoutMs' });
    await expect(client.publish('q', 'x', { timeoutMs: 1.5 })).rejects.toMatchObject({ field: 'timeoutMs' });
    await expect(
      client.publishBatch('q', [{ body: 'x' }], { signal: {} as AbortSignal }),
    ).rejects.toMatchObject({ field: 'signal' });
    expect(cluster.requestsOf('publish')).toHaveLength(0);
  });
});
