/**
 * Proves the fake broker follows the protocol rules the SDK tests rely on: one in-flight message
 * per group, higher priority first, dedup by idempotency key, prefetch windows, the broker's
 * settlement rules (an ack of a message that left the queue succeeds, LEASE_EXPIRED only under a
 * newer delivery), release of a vanished session's leases, and dead-lettered messages pushed to
 * the dead-letter queue's subscribers.
 */

import type { DeliveredMessage } from '@flotilla/shared';
import { expect, it } from 'vitest';
import { FakeBroker, type FakeSubscription } from './fake-broker.js';

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (message: DeliveredMessage) => new TextDecoder().decode(message.body);

function receiveNow(broker: FakeBroker, queue: string, max: number, sessionId = 1): DeliveredMessage[] {
  let out: DeliveredMessage[] = [];
  broker.receive(sessionId, queue, max, 0, undefined, (messages) => {
    out = messages;
  });
  return out;
}

/** A push subscription on session 1 that records what it is pushed. */
function subscription(queue: string, window: number): { sub: FakeSubscription; pushed: DeliveredMessage[] } {
  const pushed: DeliveredMessage[] = [];
  const sub: FakeSubscription = {
    sessionId: 1,
    subId: 1,
    queue,
    window,
    unsettled: new Set(),
    maxUnsettled: 0,
    push: (_queue, messages) => pushed.push(...messages),
  };
  return { sub, pushed };
}

it('keeps one message per group in flight and delivers other groups meanwhile', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  broker.publish('q', [
    { body: bytes('a1'), group: 'a' },
    { body: bytes('a2'), group: 'a' },
    { body: bytes('b1'), group: 'b' },
  ]);
  const first = receiveNow(broker, 'q', 10);
  expect(first.map(text)).toEqual(['a1', 'b1']);
  broker.ack([{ queue: 'q', seq: first[0]!.seq, deliveryId: first[0]!.deliveryId }]);
  expect(receiveNow(broker, 'q', 10).map(text)).toEqual(['a2']);
});

it('delivers higher priorities first, FIFO within a priority', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', { priorityLevels: 3 });
  broker.publish('q', [
    { body: bytes('low'), priority: 0 },
    { body: bytes('high1'), priority: 2 },
    { body: bytes('mid'), priority: 1 },
    { body: bytes('high2'), priority: 2 },
  ]);
  expect(receiveNow(broker, 'q', 10).map(text)).toEqual(['high1', 'high2', 'mid', 'low']);
});

it('stores a repeated idempotency key once and reports the duplicate', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  expect(broker.publish('q', [{ body: bytes('x'), idempotencyKey: 'k' }])).toEqual({
    seqs: [1],
    duplicates: [],
  });
  expect(broker.publish('q', [{ body: bytes('x'), idempotencyKey: 'k' }])).toEqual({
    seqs: [1],
    duplicates: [0],
  });
  expect(broker.stats('q').depth).toBe(1);
});

it('pushes within the window and refills it as deliveries settle', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  broker.publish(
    'q',
    [1, 2, 3, 4, 5].map((n) => ({ body: bytes(String(n)) })),
  );
  const { sub, pushed } = subscription('q', 2);
  broker.subscribe(sub);
  expect(pushed.map(text)).toEqual(['1', '2']);
  broker.nack([{ queue: 'q', seq: pushed[0]!.seq, deliveryId: pushed[0]!.deliveryId }], 60_000);
  expect(pushed.map(text)).toEqual(['1', '2', '3']);
  expect(sub.maxUnsettled).toBe(2);
  broker.close();
});

it('settles like the broker: gone is done, LEASE_EXPIRED only under a newer delivery', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  broker.publish('q', [{ body: bytes('a') }, { body: bytes('b') }, { body: bytes('c') }]);
  const [a, b, c] = receiveNow(broker, 'q', 3, 7);
  const ref = (m: DeliveredMessage) => ({ queue: 'q', seq: m.seq, deliveryId: m.deliveryId });
  expect(broker.ack([ref(a!)])).toEqual({ failed: [] });
  // The message left the queue: acking (or nacking) it again succeeds and changes nothing.
  expect(broker.ack([ref(a!)])).toEqual({ failed: [] });
  expect(broker.nack([ref(a!)], undefined)).toEqual({ failed: [] });
  expect(broker.extend([ref(a!)], 1_000).failed[0]!.code).toBe('LEASE_EXPIRED');
  broker.dropSession(7);
  // b's lease ended and nobody got it since: extend fails, a nack is a no-op, an ack still removes it.
  expect(broker.extend([ref(b!)], 1_000).failed[0]!.code).toBe('LEASE_EXPIRED');
  expect(broker.nack([ref(b!)], undefined)).toEqual({ failed: [] });
  expect(broker.ack([ref(b!)])).toEqual({ failed: [] });
  // c was delivered again: the old delivery is stale and settles nothing.
  const again = receiveNow(broker, 'q', 3);
  expect(again.map((m) => [text(m), m.deliveryCount])).toEqual([['c', 2]]);
  expect(broker.ack([ref(c!)])).toEqual({ failed: [{ index: 0, code: 'LEASE_EXPIRED' }] });
  expect(broker.ack([{ queue: 'q', seq: 99, deliveryId: 1 }]).failed[0]!.code).toBe('LEASE_EXPIRED');
  expect(broker.ack([{ queue: 'nope', seq: 1, deliveryId: 1 }]).failed[0]!.code).toBe('QUEUE_NOT_FOUND');
  expect(broker.stats('q')).toMatchObject({ depth: 1, inFlight: 1, ackedCount: 2 });
  broker.close();
});

it('purges ready messages and leaves in-flight ones with their consumers', () => {
  const broker = new FakeBroker();
  broker.createQueue('q', {});
  broker.publish('q', [{ body: bytes('held') }, { body: bytes('ready') }]);
  const [held] = receiveNow(broker, 'q', 1);
  expect(broker.purgeQueue('q')).toBe(1);
  expect(broker.ack([{ queue: 'q', seq: held!.seq, deliveryId: held!.deliveryId }])).toEqual({ failed: [] });
  expect(broker.stats('q').depth).toBe(0);
});

it('pushes a dead-lettered message to a subscription on the dead-letter queue', () => {
  const broker = new FakeBroker();
  broker.createQueue('q.dlq', {});
  broker.createQueue('q', { deadLetterQueue: 'q.dlq', maxDeliveries: 1 });
  const { sub, pushed } = subscription('q.dlq', 10);
  broker.subscribe(sub);
  broker.publish('q', [{ body: bytes('rejected') }, { body: bytes('failed') }]);
  const [first, second] = receiveNow(broker, 'q', 2);
  broker.nack([{ queue: 'q', seq: first!.seq, deliveryId: first!.deliveryId }], undefined, true);
  expect(pushed.map((m) => [text(m), m.deadLetter?.reason])).toEqual([['rejected', 'rejected']]);
  broker.nack([{ queue: 'q', seq: second!.seq, deliveryId: second!.deliveryId }], undefined);
  expect(pushed.map((m) => [text(m), m.deadLetter?.reason])).toEqual([
    ['rejected', 'rejected'],
    ['failed', 'max-deliveries'],
  ]);
  broker.close();
});
